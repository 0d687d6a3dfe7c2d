package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"leadrelay/crmsim"
	"leadrelay/tools/bench/rawref"
)

// Credentials of the simulated CRM, which the raw reference worker uses too.
const (
	crmLogin  = rawref.CRMLogin
	crmAPIKey = rawref.CRMAPIKey
)

// crm is the SalesMan simulator on a loopback port, behind a counter that
// notes when each request arrived.
type crm struct {
	url  string
	stop func()
	counter
	outage
}

// startCRM serves a fresh simulator with the given faults.
func startCRM(faults crmsim.Faults) (*crm, error) {
	sim, err := crmsim.New(crmsim.Config{API: crmsim.APIv2, APIKey: crmAPIKey, Faults: faults, Seed: 1})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &crm{url: "http://" + ln.Addr().String()}
	c.expect(0, false)
	c.stop = serve(ln, c.wrap(sim))
	return c, nil
}

func (c *crm) close() { c.stop() }

// serve serves h on ln until stop, which gives requests in flight 5s to
// finish.
func serve(ln net.Listener, h http.Handler) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// wrap counts and gauges the API requests to next (developer/v1/leads,
// developer/v2/lead). The real CRM's v2 add calls its own
// developer/webhooks.php at the Host its request came to, so behind the
// proxy that self-call comes here too: it is forwarded, but is no request
// of a client's and is not counted.
func (c *crm) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/developer/v1/") && !strings.HasPrefix(r.URL.Path, "/developer/v2/") {
			next.ServeHTTP(w, r)
			return
		}
		var email string
		if c.tracking() && r.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(b))
			if q, err := url.ParseQuery(string(b)); err == nil {
				email = q.Get("email")
			}
		}
		if !c.enter(w) {
			return
		}
		// Deferred: a ReverseProxy whose client went away mid-answer
		// aborts with a panic (http.ErrAbortHandler), and a gauge that
		// missed those leaves counted them in flight for ever after.
		defer c.leave()
		next.ServeHTTP(w, r)
		c.hit(email)
	})
}

// counter counts events (CRM requests, handler runs), notes the first and
// the last, and, while tracking, when each lead (by e-mail) arrived.
type counter struct {
	mu    sync.Mutex
	n     int
	first time.Time
	last  time.Time
	want  int
	done  chan struct{}
	seen  map[string]time.Time
	dups  int // tracked leads that arrived again
	track bool
}

// expect resets the count and returns a channel closed when n events arrived.
func (c *counter) expect(n int, track bool) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.want, c.track = 0, n, track
	c.first, c.last = time.Time{}, time.Time{}
	c.seen, c.dups = map[string]time.Time{}, 0
	c.done = make(chan struct{})
	if n <= 0 {
		close(c.done)
	}
	return c.done
}

func (c *counter) tracking() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.track
}

func (c *counter) hit(email string) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n == 1 {
		c.first = now
	}
	c.last = now
	if c.track && email != "" {
		if _, again := c.seen[email]; again {
			c.dups++
		}
		c.seen[email] = now
	}
	if c.n == c.want {
		close(c.done)
	}
}

// count is the events so far.
func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// rate is the steady events per second with inflight events at once: the
// first inflight events are what the first arrival closes (they all
// started together), so they are left out of the count.
func (c *counter) rate(inflight int) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.last.Sub(c.first).Seconds()
	if c.n <= inflight || d <= 0 {
		return 0
	}
	return float64(c.n-inflight) / d
}

// arrivals is when each tracked lead arrived, by e-mail.
func (c *counter) arrivals() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]time.Time, len(c.seen))
	for k, v := range c.seen {
		out[k] = v
	}
	return out
}

// distinct is how many tracked leads arrived; twice how many arrivals were
// a tracked lead's again.
func (c *counter) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *counter) twice() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups
}

// span is the first and the last event's time.
func (c *counter) span() (first, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first, c.last
}
