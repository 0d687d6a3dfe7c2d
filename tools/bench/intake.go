package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/internal/app"
	"leadrelay/lead"
)

// Intake variants.
const (
	intakeRaw    = "raw asynq Enqueue"
	intakeBare   = "asynq behind bare net/http"
	intakeJSON   = "LeadRelay intake JSON"
	intakeDropIn = "LeadRelay intake drop-in"
	// intakePlain is LeadRelay's JSON intake without data keys
	// (LEADRELAY_DATA_UNENCRYPTED): what sealing each lead costs.
	intakePlain = "LeadRelay intake JSON, unsealed"
)

// plainEnv is the relay's setting without data keys.
var plainEnv = map[string]string{"LEADRELAY_DATA_KEYS": "", "LEADRELAY_DATA_UNENCRYPTED": "true"}

// intakeRounds is how many slices each intake point is measured in.
const intakeRounds = 4

// intakeLevels are the client concurrencies measured.
var intakeLevels = []int{1, 8, 32}

// loadResult is one load point.
type loadResult struct {
	ok, failed int
	perSec     float64
	lat        []time.Duration
	// spent is the load's wall time; procCPU the bench process's CPU
	// time over it, and redis Redis's requests and CPU (measuredLoad).
	spent   time.Duration
	procCPU time.Duration
	redis   load
}

// measuredLoad empties Redis and runs runLoad between two looks at the
// bench process's CPU and Redis's load.
func (b *bench) measuredLoad(ctx context.Context, c int, d time.Duration, do func(ctx context.Context, i int) error) (loadResult, error) {
	if err := b.flush(ctx); err != nil {
		return loadResult{}, err
	}
	before, err := redisLoad(ctx, b.rdb)
	if err != nil {
		return loadResult{}, err
	}
	t0, cpu := time.Now(), selfCPU()
	res := runLoad(ctx, c, d, do)
	res.spent, res.procCPU = time.Since(t0), selfCPU()-cpu
	after, err := redisLoad(ctx, b.rdb)
	res.redis = load{reads: after.reads - before.reads, cmds: after.cmds - before.cmds, cpu: after.cpu - before.cpu}
	return res, err
}

// add sums o into r: slices of one variant's load.
func (r *loadResult) add(o loadResult) {
	r.ok += o.ok
	r.failed += o.failed
	r.lat = append(r.lat, o.lat...)
	r.spent += o.spent
	r.procCPU += o.procCPU
	r.redis = load{reads: r.redis.reads + o.redis.reads, cmds: r.redis.cmds + o.redis.cmds, cpu: r.redis.cpu + o.redis.cpu}
}

// runLoad calls do from c goroutines for d and counts what succeeded.
func runLoad(ctx context.Context, c int, d time.Duration, do func(ctx context.Context, i int) error) loadResult {
	var seq atomic.Int64
	var mu sync.Mutex
	var res loadResult
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			ok, failed := 0, 0
			for time.Now().Before(end) && ctx.Err() == nil {
				i := int(seq.Add(1))
				t0 := time.Now()
				if err := do(ctx, i); err != nil {
					failed++
					continue
				}
				lat = append(lat, time.Since(t0))
				ok++
			}
			mu.Lock()
			res.ok += ok
			res.failed += failed
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.perSec = float64(res.ok) / time.Since(start).Seconds()
	slices.Sort(res.lat)
	return res
}

// httpClient keeps c connections alive to one host.
func httpClient(c int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: c, MaxIdleConnsPerHost: c, IdleConnTimeout: time.Minute,
	}}
}

// postJSON sends lead i as the JSON API does and wants 202.
func postJSON(ctx context.Context, hc *http.Client, base, run string, i int) error {
	body, _ := json.Marshal(benchLead(run, i))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/leads", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+benchSiteKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", run+"-"+strconv.Itoa(i))
	return expectStatus(hc.Do(req))(http.StatusAccepted, "")
}

// postDropIn sends lead i as an old PHP site does and wants Success.
func postDropIn(ctx context.Context, hc *http.Client, base, run string, i int) error {
	l := benchLead(run, i)
	f := url.Values{"login": {benchSite}, "apikey": {benchSiteKey}, "action": {"add"},
		"title": {l.Title}, "email": {l.Email}, "phone": {l.Phone}, "company": {l.Company},
		"description": {l.Description}, "utm_source": {l.UTMSource}, "utm_medium": {l.UTMMedium},
		"utm_campaign": {l.UTMCampaign}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/developer/v1/leads", strings.NewReader(f.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return expectStatus(hc.Do(req))(http.StatusOK, `"Success"`)
}

// expectStatus reads and closes the answer and checks its status (and that
// the body holds want, when set).
func expectStatus(resp *http.Response, err error) func(int, string) error {
	return func(status int, want string) error {
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode != status || want != "" && !bytes.Contains(b, []byte(want)) {
			return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
		}
		return nil
	}
}

// bareIntake is the reference intake: net/http, a lenient json.Unmarshal,
// a key check, the same payload and task options as LeadRelay, one
// Enqueue. No validation, limits, logs or metrics.
type bareIntake struct {
	url    string
	stop   func()
	client *asynq.Client
	rdb    *redis.Client
}

func startBareIntake(redisAddr string) (*bareIntake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &bareIntake{url: "http://" + ln.Addr().String(), rdb: redis.NewClient(&redis.Options{Addr: redisAddr})}
	b.client = asynq.NewClientFromRedisClient(b.rdb)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/leads", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+benchSiteKey {
			http.Error(w, `{"error":"unknown site key"}`, http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lead.MaxPayloadBytes))
		if err != nil {
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
			return
		}
		var l lead.Lead
		if err := json.Unmarshal(body, &l); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		p := lead.NewPayload(benchSite, r.Header.Get("Idempotency-Key"), l, time.Now())
		t, err := lead.NewTask(p)
		if err == nil {
			_, err = b.client.EnqueueContext(r.Context(), t, taskOptions()...)
		}
		if err != nil {
			http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id":"` + p.ID + `","status":"queued"}` + "\n"))
	})
	b.stop = serve(ln, mux)
	return b, nil
}

func (b *bareIntake) close() {
	b.stop()
	_ = b.client.Close()
	_ = b.rdb.Close()
}

// intake measures accepted leads/s and ack latency of every variant at
// every level. Redis is emptied before each point so queues start equal.
func (b *bench) intake(ctx context.Context) error {
	addr := b.addr
	bare, err := startBareIntake(addr)
	if err != nil {
		return err
	}
	defer bare.close()
	lr, err := startRelay(ctx, b.env(nil, nil), app.Roles{Intake: true})
	if err != nil {
		return err
	}
	defer lr.stop()
	plain, err := startRelay(ctx, b.env(nil, plainEnv), app.Roles{Intake: true})
	if err != nil {
		return err
	}
	defer plain.stop()
	rawRdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rawRdb.Close()
	raw := asynq.NewClientFromRedisClient(rawRdb)
	defer raw.Close()

	for _, c := range intakeLevels {
		hc := httpClient(c)
		variants := []struct {
			name string
			do   func(ctx context.Context, i int) error
		}{
			{intakeRaw, func(ctx context.Context, i int) error {
				t, err := lead.NewTask(lead.NewPayload(benchSite, "raw-"+strconv.Itoa(i), benchLead("raw", i), time.Now()))
				if err != nil {
					return err
				}
				_, err = raw.EnqueueContext(ctx, t, taskOptions()...)
				return err
			}},
			{intakeBare, func(ctx context.Context, i int) error { return postJSON(ctx, hc, bare.url, "bare", i) }},
			{intakeJSON, func(ctx context.Context, i int) error { return postJSON(ctx, hc, lr.url, "json", i) }},
			{intakeDropIn, func(ctx context.Context, i int) error { return postDropIn(ctx, hc, lr.url, "dropin", i) }},
			{intakePlain, func(ctx context.Context, i int) error { return postJSON(ctx, hc, plain.url, "plain", i) }},
		}
		// The variants take turns in short slices, the order reversed every
		// round, so a change in the machine's load (it is shared) falls on
		// all of them alike.
		total := make([]loadResult, len(variants))
		for r := range intakeRounds {
			for j := range variants {
				vi := j
				if r%2 == 1 {
					vi = len(variants) - 1 - j
				}
				res, err := b.measuredLoad(ctx, c, b.sz.intakeFor/intakeRounds, variants[vi].do)
				if err != nil {
					return err
				}
				total[vi].add(res)
			}
		}
		for vi, v := range variants {
			res := total[vi]
			if res.ok == 0 {
				return fmt.Errorf("%s at C=%d: nothing accepted (%d failed)", v.name, c, res.failed)
			}
			res.perSec = float64(res.ok) / res.spent.Seconds()
			slices.Sort(res.lat)
			b.logf("intake  %-28s C=%-2d %8.0f/s  p50 %6s  p99 %6s  failed %d", v.name, c, res.perSec,
				pct(res.lat, 0.50).Round(10*time.Microsecond), pct(res.lat, 0.99).Round(10*time.Microsecond), res.failed)
			b.rep.addIntake(v.name, c, res)
		}
		hc.CloseIdleConnections()
	}
	return nil
}

// pct is the q-quantile of sorted durations.
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
