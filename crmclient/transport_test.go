package crmclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"leadrelay/delivery"
	"leadrelay/lead"
)

// hangUp hijacks the connection and closes it after the request was read:
// the CRM may have acted, but no answer comes back.
func hangUp(w http.ResponseWriter, _ *http.Request, _ []byte) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func TestTransportClosedAfterRequest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		action string
		want   Class
	}{
		{actionAdd, ClassAmbiguous},
		{actionList, ClassTransient},
		{actionInfo, ClassTransient},
	} {
		t.Run(tt.action, func(t *testing.T) {
			t.Parallel()
			srv := newStub(t, hangUp)
			c := newTestClient(t, srv.URL, WithAPIVersion(V2))
			_, err := call(t.Context(), c, tt.action)
			var te *TransportError
			if !errors.As(err, &te) {
				t.Fatalf("want *TransportError, got %T %v", err, err)
			}
			if !te.Sent {
				t.Errorf("Sent = false, want true: %v", err)
			}
			wantEqual(t, Classify(err), tt.want)
			wantEqual(t, te.Action, tt.action)
			if n := len(srv.requests()); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

func TestTransportRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	c := newTestClient(t, base)
	for _, action := range []string{actionAdd, actionStat} {
		_, err := call(t.Context(), c, action)
		var te *TransportError
		if !errors.As(err, &te) {
			t.Fatalf("%s: want *TransportError, got %T %v", action, err, err)
		}
		if te.Sent {
			t.Errorf("%s: Sent = true for a refused connection", action)
		}
		wantEqual(t, Classify(err), ClassTransient)
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Errorf("%s: want the *url.Error in the chain: %v", action, err)
		}
		if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), url.QueryEscape(testKey)) {
			t.Errorf("error holds the key: %v", err)
		}
	}
}

// block waits for the client to give up.
func block(w http.ResponseWriter, r *http.Request, _ []byte) {
	<-r.Context().Done()
}

func TestContextCanceled(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	srv := newStub(t, func(w http.ResponseWriter, r *http.Request, b []byte) {
		arrived <- struct{}{}
		block(w, r, b)
	})
	c := newTestClient(t, srv.URL, WithAPIVersion(V2))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.Add(ctx, Lead{Lead: lead.Lead{Title: "x"}})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ctx.Err()) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	var te *TransportError
	if !errors.As(err, &te) || !te.Sent {
		t.Errorf("want a sent TransportError, got %#v", err)
	}
	wantEqual(t, Classify(err), ClassAmbiguous)

	// Already cancelled: nothing is sent.
	_, err = c.List(ctx, ListOptions{})
	if !errors.Is(err, context.Canceled) || !errors.As(err, &te) || te.Sent {
		t.Errorf("got %#v, want unsent TransportError wrapping context.Canceled", err)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	srv := newStub(t, block)
	c := newTestClient(t, srv.URL, WithTimeout(50*time.Millisecond))
	_, err := c.Stat(t.Context())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	wantEqual(t, Classify(err), ClassTransient)
}

// TestNoKeyInErrors makes the server echo the request into every kind of
// error and checks that no error text holds the key in any encoding.
func TestNoKeyInErrors(t *testing.T) {
	t.Parallel()
	forms := []string{testKey, url.QueryEscape(testKey), url.QueryEscape(url.QueryEscape(testKey)), url.PathEscape(testKey)}
	echo := func(status int, format string) func(http.ResponseWriter, *http.Request, []byte) {
		return func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.WriteHeader(status)
			form, _ := url.ParseQuery(string(body))
			key, _ := url.QueryUnescape(form.Get("apikey"))
			fmt.Fprintf(w, format, key+" "+string(body))
		}
	}
	tests := []struct {
		name string
		h    func(http.ResponseWriter, *http.Request, []byte)
	}{
		{"status", echo(502, "bad gateway: %s")},
		{"decode", echo(200, "<b>Fatal error</b>: %s")},
		{"api", echo(200, `{"result":"Error","error":{"code":"400","text":%q}}`)},
		{"redirect", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			w.Header().Set("Location", "https://crm/?apikey="+url.QueryEscape(testKey))
			w.WriteHeader(302)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newStub(t, tt.h)
			c := newTestClient(t, srv.URL)
			_, err := c.Add(t.Context(), Lead{Lead: lead.Lead{Title: "x"}})
			if err == nil {
				t.Fatal("want error")
			}
			for _, text := range []string{err.Error(), Diagnose(err).Reason.Text(delivery.Operators), fmt.Sprintf("%+v", err)} {
				for _, f := range forms {
					if strings.Contains(text, f) {
						t.Errorf("error text holds the key as %q: %s", f, text)
					}
				}
			}
			for _, r := range srv.requests() {
				if strings.Contains(r.rawQuery+r.path, "apikey") {
					t.Errorf("key in URL: %s?%s", r.path, r.rawQuery)
				}
			}
		})
	}
}

func TestSanitizeURLError(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "https://crm")
	inner := errors.New("dial tcp: refused for " + testKey)
	err := c.sanitize(&url.Error{Op: "Post", URL: "https://crm/x?apikey=" + url.QueryEscape(testKey), Err: inner})
	if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), url.QueryEscape(testKey)) {
		t.Errorf("sanitize kept the key: %v", err)
	}
	if !errors.Is(err, inner) {
		t.Error("sanitize broke the error chain")
	}
}

func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("action") == "list" {
			w.WriteHeader(500)
			fmt.Fprint(w, strings.Repeat("x", 10000)) // an error body must be drained too
			return
		}
		w.Write(golden(t, "v2_add_ok.json"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, WithAPIVersion(V2))
	for i := range 6 {
		if i%2 == 0 {
			_, _ = c.List(t.Context(), ListOptions{})
		} else if _, err := c.Add(t.Context(), Lead{Lead: lead.Lead{Title: "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	wantEqual(t, conns.Load(), int32(1))
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := newStub(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		fmt.Fprintf(w, `{"result":"Success","id":%d}`, n.Add(1))
	})
	c := newTestClient(t, srv.URL, WithAPIVersion(V2), WithJSON(true))
	var wg sync.WaitGroup
	ids := make(chan int64, 50)
	for range 50 {
		wg.Go(func() {
			id, err := c.Add(t.Context(), Lead{Lead: lead.Lead{Title: "x"}})
			if err != nil {
				t.Error(err)
			}
			ids <- id
		})
	}
	wg.Wait()
	close(ids)
	seen := map[int64]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("id %d twice", id)
		}
		seen[id] = true
	}
	wantEqual(t, len(seen), 50)
}

// TestKeyStraddlingSnippetCut is finding M1: the CRM echoes the API key in
// its error text (leads.php puts it in SQL error messages), and a key that
// straddles the 200-byte snippet cut left its prefix behind when the body
// was cut before it was redacted.
func TestKeyStraddlingSnippetCut(t *testing.T) {
	t.Parallel()
	const key = "QX7secretSECRETsecret42"
	forms := []string{key, url.QueryEscape(key), url.QueryEscape(url.QueryEscape(key))}
	type tc struct {
		name   string
		status int
		offset int // where the key starts in the body
	}
	var tests []tc
	for _, status := range []int{200, 500} {
		for _, off := range []int{snippetLen - 20, snippetLen - 10, snippetLen - 4, snippetLen - 1} {
			tests = append(tests, tc{fmt.Sprintf("HTTP %d key at %d", status, off), status, off})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newStub(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(tt.status)
				body := "<b>Fatal error</b>: SQL " + strings.Repeat("x", tt.offset-len("<b>Fatal error</b>: SQL ")) +
					key + " in query; apikey='" + key + "'"
				_, _ = w.Write([]byte(body))
			})
			c, err := New(srv.URL, testLogin, key)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Add(t.Context(), Lead{Lead: lead.Lead{Title: "x"}})
			if err == nil {
				t.Fatal("want an error")
			}
			text := err.Error()
			for _, f := range forms {
				for n := 4; n <= len(f); n++ {
					if strings.Contains(text, f[:n]) {
						t.Fatalf("error keeps %d bytes of the key (form %q): %s", n, f, text)
					}
				}
			}
		})
	}
}

// TestMaxIdleConnsReusesConnections: after n requests at once, a client
// keeping n idle connections serves the next n at once without dialling
// again, while the default keeps DefaultMaxIdleConns and dials the rest.
func TestMaxIdleConnsReusesConnections(t *testing.T) {
	t.Parallel()
	const n = DefaultMaxIdleConns + 8
	for _, tc := range []struct {
		name      string
		opts      []Option
		wantDials int // in the second round
	}{
		{"default", nil, n - DefaultMaxIdleConns},
		{"WithMaxIdleConns(n)", []Option{WithMaxIdleConns(n)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var dials atomic.Int64
			var arrived sync.WaitGroup
			var mu sync.Mutex
			release := make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived.Done()
				mu.Lock()
				ch := release
				mu.Unlock()
				select { // hold every request until all n are in, so n connections are open
				case <-ch:
				case <-time.After(10 * time.Second):
				}
				_, _ = w.Write([]byte(`{"result":"Success","id":1}`))
			}))
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					dials.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			c := newTestClient(t, srv.URL, append([]Option{WithAPIVersion(V2)}, tc.opts...)...)
			round := func() {
				mu.Lock()
				release = make(chan struct{})
				mu.Unlock()
				arrived.Add(n)
				var done sync.WaitGroup
				for range n {
					done.Add(1)
					go func() {
						defer done.Done()
						if _, err := c.Add(t.Context(), Lead{Lead: lead.Lead{Title: "Ann"}}); err != nil {
							t.Error(err)
						}
					}()
				}
				all := make(chan struct{})
				go func() { arrived.Wait(); close(all) }()
				select {
				case <-all:
				case <-time.After(10 * time.Second):
					t.Fatal("the requests did not all reach the server")
				}
				mu.Lock()
				close(release)
				mu.Unlock()
				done.Wait()
			}
			round()
			first := dials.Load()
			round()
			if got := dials.Load() - first; got != int64(tc.wantDials) {
				t.Errorf("second round dialled %d connections, want %d (first round: %d)", got, tc.wantDials, first)
			}
		})
	}
}
