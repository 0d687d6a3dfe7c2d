package crmsim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/testclock"
)

// The faults in this file reproduce what the running CRM does (see doc.go).

// addAsync posts a v2 add with a relay uid in the background; the channel
// gets the answer or the transport error.
type asyncAnswer struct {
	a   answer
	err error
}

func addAsync(ctx context.Context, base, path string, kv ...string) <-chan asyncAnswer {
	out := make(chan asyncAnswer, 1)
	v := auth(append([]string{"action", "add", "title", "async"}, kv...)...)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- asyncAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, rerr := resp.Body.Read(buf)
			b.Write(buf[:n])
			if rerr != nil {
				break
			}
		}
		out <- asyncAnswer{a: answer{status: resp.StatusCode, body: b.String()}}
	}()
	return out
}

func await(t *testing.T, what string, c <-chan asyncAnswer) asyncAnswer {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return asyncAnswer{}
	}
}

// v2UIDs lists lead id's uids through v2 list, as a client's reconcile sees them.
func v2UIDs(t *testing.T, base string, id int64) []uidPair {
	t.Helper()
	a := postForm(t, base, PathV2, auth("action", "list"))
	var r struct {
		Data []struct {
			ID   int64     `json:"id"`
			UIDs []uidPair `json:"uids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(a.body), &r); err != nil {
		t.Fatalf("v2 list: %v %s", err, a.body)
	}
	for _, d := range r.Data {
		if d.ID == id {
			return d.UIDs
		}
	}
	t.Fatalf("lead %d not listed: %s", id, a.body)
	return nil
}

func TestFaultStampGap(t *testing.T) {
	t.Parallel()
	// The gap is long enough for the test to look inside it; nothing
	// asserts how long it took.
	sim, ts := newTestSim(t, Config{Faults: Faults{StampGap: Duration(3 * time.Second)}})
	done := addAsync(t.Context(), ts.URL, PathV2, "uids[leadrelay_key]", "k-1")
	waitFor(t, "the lead stored without its stamp", func() bool { return sim.Stats().MissingUIDs == 1 })

	if got := v2UIDs(t, ts.URL, 1); len(got) != 0 {
		t.Fatalf("inside the gap the lead is listed with uids %v", got)
	}
	var missing []StoredLead
	if err := json.Unmarshal([]byte(adminDo(t, "GET", ts.URL+"/_sim/leads?missing_uids=1", "").body), &missing); err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || missing[0].MissingUIDs["leadrelay_key"] != "k-1" {
		t.Fatalf("/_sim/leads?missing_uids=1 = %+v", missing)
	}

	r := await(t, "the add's answer", done)
	if r.err != nil || !strings.HasPrefix(r.a.body, `{"result":"Success","id":1}`) {
		t.Fatalf("add: %v %+v", r.err, r.a)
	}
	if got := v2UIDs(t, ts.URL, 1); len(got) != 1 || got[0] != (uidPair{"leadrelay_key", "k-1"}) {
		t.Fatalf("after the answer the lead has uids %v", got)
	}
	if st := sim.Stats(); st.MissingUIDs != 0 {
		t.Fatalf("after the answer %d leads lack their stamp", st.MissingUIDs)
	}
}

func TestFaultStampKill(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults Faults
	}{
		{"killed at once", Faults{StampKillRate: 1}},
		{"killed in a gap", Faults{StampKillRate: 1, StampGap: Duration(time.Hour)}},
		{"killed in the PHP pool", Faults{StampKillRate: 1, PHPWorkers: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, ts := newTestSim(t, Config{Faults: tt.faults})
			r := await(t, "the add", addAsync(t.Context(), ts.URL, PathV2, "uids[leadrelay_key]", "k-1"))
			if r.err == nil {
				t.Fatalf("want the connection dropped, got HTTP %d %s", r.a.status, r.a.body)
			}
			leads := sim.Leads()
			if len(leads) != 1 || len(leads[0].UIDs) != 0 || leads[0].MissingUIDs["leadrelay_key"] != "k-1" {
				t.Fatalf("leads %+v, want one stored without its stamp", leads)
			}
			if got := v2UIDs(t, ts.URL, 1); len(got) != 0 {
				t.Fatalf("listed with uids %v", got)
			}
			st := sim.Stats()
			if st.Faults["stamp_kill"] != 1 || st.MissingUIDs != 1 {
				t.Fatalf("stats %+v", st)
			}
			// v1 adds have no stamp to lose and are never killed.
			if a := postForm(t, ts.URL, PathV1, auth("action", "add", "title", "v1")); !strings.Contains(a.body, "Success") {
				t.Fatalf("v1 add: %d %s", a.status, a.body)
			}
		})
	}
}

func TestFaultFatalStyle(t *testing.T) {
	t.Parallel()
	type want struct {
		status int
		html   bool // the HTML page; else an empty body
	}
	page, empty := want{200, true}, want{500, false}
	tests := []struct {
		name   string
		faults Faults
		path   string
		kv     []string
		want   want
	}{
		{"fatal rate html v1", Faults{FatalRate: 1}, PathV1, []string{"action", "add"}, page},
		{"fatal rate empty500 v1", Faults{FatalRate: 1, FatalStyle: FatalEmpty500}, PathV1, []string{"action", "add"}, empty},
		{"fatal rate empty500 v2", Faults{FatalRate: 1, FatalStyle: FatalEmpty500}, PathV2, []string{"action", "add"}, empty},
		{"fatal rate crm v1", Faults{FatalRate: 1, FatalStyle: FatalCRM}, PathV1, []string{"action", "stat"}, empty},
		{"fatal rate crm v2 keeps the page", Faults{FatalRate: 1, FatalStyle: FatalCRM}, PathV2, []string{"action", "add"}, page},
		{"v1 shipped add html", Faults{V1Shipped: true}, PathV1, []string{"action", "add"}, page},
		{"v1 shipped add crm", Faults{V1Shipped: true, FatalStyle: FatalCRM}, PathV1, []string{"action", "add"}, empty},
		{"v1 shipped info crm", Faults{V1Shipped: true, FatalStyle: FatalCRM}, PathV1, []string{"action", "info", "id", "1"}, empty},
		{"v1 quote in the API log crm", Faults{FatalStyle: FatalCRM}, PathV1, []string{"action", "stat", "title", "it's"}, empty},
		{"v1 unknown order empty500", Faults{FatalStyle: FatalEmpty500}, PathV1, []string{"action", "list", "order", "nope"}, empty},
		{"v2 unknown order crm keeps the page", Faults{FatalStyle: FatalCRM}, PathV2, []string{"action", "list", "order", "nope"}, page},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, ts := newTestSim(t, Config{Faults: tt.faults})
			a := postForm(t, ts.URL, tt.path, auth(tt.kv...))
			isPage := strings.Contains(a.body, "<b>Fatal error</b>")
			if a.status != tt.want.status || isPage != tt.want.html || !isPage && a.body != "" {
				t.Fatalf("HTTP %d body %q, want HTTP %d page=%v", a.status, a.body, tt.want.status, tt.want.html)
			}
			if n := len(sim.Leads()); n != 0 && tt.kv[1] == "add" {
				t.Fatalf("a fatal add stored %d leads", n)
			}
		})
	}
}

// TestFaultV1ShippedEmpty500 is v1 on a current CRM: add and info answer
// HTTP 500 with an empty body on every call and store nothing, while stat
// and list work (list ignoring its parameters).
func TestFaultV1ShippedEmpty500(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{Faults: Faults{V1Shipped: true, FatalStyle: FatalCRM}})
	addV2(t, ts.URL, "title", "via v2")
	tests := []struct {
		action string
		status int
		prefix string
	}{
		{"add", 500, ""}, {"info", 500, ""}, {"add", 500, ""},
		{"stat", 200, `{"data":[{"title":"admin@example.com"`},
		{"list", 200, `{"data":[{"id":"1"`},
	}
	for _, tt := range tests {
		a := postForm(t, ts.URL, PathV1, auth("action", tt.action, "title", "x", "id", "1", "offset", "3"))
		if a.status != tt.status || !strings.HasPrefix(a.body, tt.prefix) || tt.prefix == "" && a.body != "" {
			t.Fatalf("v1 %s: HTTP %d %q, want HTTP %d %q", tt.action, a.status, a.body, tt.status, tt.prefix)
		}
	}
	if n := len(sim.Leads()); n != 1 {
		t.Fatalf("%d leads stored, want only the v2 one", n)
	}
}

func TestFaultV1ListIgnoresParams(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	sim, ts := newTestSim(t, Config{Clock: clock.Now, Location: time.UTC, Faults: Faults{V1ListIgnoresParams: true}})
	addMany(t, sim, clock, 249)
	if a := postForm(t, ts.URL, PathV1, auth("action", "add", "title", "v1 add works")); a.body != `{"result":{"text":"Success","id":250}}` {
		t.Fatalf("v1 add: %s", a.body)
	}
	tests := []struct {
		name string
		kv   []string
	}{
		{"offset", []string{"offset", "1"}},
		{"old first", []string{"first", "old"}},
		{"dates", []string{"dateStart", "2030-01-01", "dateEnd", "2030-01-02"}},
		{"unknown order", []string{"order", "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := listIDs(t, ts.URL, PathV1, tt.kv...)
			if len(ids) != 200 || ids[0] != "250" || ids[199] != "51" {
				t.Fatalf("got %d ids starting %v, want the newest 200 (250..51)", len(ids), ids[:min(len(ids), 1)])
			}
		})
	}
	// v2 list keeps its parameters.
	if ids := listIDs(t, ts.URL, PathV2, "offset", "1"); len(ids) != 50 {
		t.Fatalf("v2 offset 1: %d ids", len(ids))
	}
}

func TestFaultLateCommit(t *testing.T) {
	t.Parallel()
	for _, path := range []string{PathV1, PathV2} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			sim, ts := newTestSim(t, Config{Faults: Faults{LateCommitRate: 1, LateCommitDelay: Duration(3 * time.Second)}})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := addAsync(ctx, ts.URL, path, "uids[leadrelay_key]", "k-1")
			waitFor(t, "the add at work", func() bool { return sim.Stats().Faults["late_commit"] == 1 })
			if n := len(sim.Leads()); n != 0 {
				t.Fatalf("stored %d leads before the work was done", n)
			}
			cancel() // the client gives up, as on its timeout
			if r := await(t, "the cancelled add", done); r.err == nil {
				t.Fatalf("want the client's error, got HTTP %d", r.a.status)
			}
			waitFor(t, "the late commit", func() bool { return len(sim.Leads()) == 1 })
			if path == PathV2 {
				if l := sim.Leads()[0]; l.UIDs["leadrelay_key"] != "k-1" {
					t.Fatalf("late lead %+v lacks its stamp", l)
				}
			}
		})
	}
}

// TestPHPPoolWebhookStall: a v2 add holds its PHP worker while it calls the
// CRM's own webhooks, which need a worker too; with none free the call
// waits out WebhookStall, then the add finishes (stamp written).
func TestPHPPoolWebhookStall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		workers   int
		wantStall int64
	}{
		{"one worker: the webhook finds none free", 1, 1},
		{"two workers: the webhook gets the second", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, ts := newTestSim(t, Config{Faults: Faults{PHPWorkers: tt.workers, WebhookStall: Duration(100 * time.Millisecond)}})
			id := addV2(t, ts.URL, "uids[leadrelay_key]", "k-1")
			if l, _ := sim.Lead(id); l.UIDs["leadrelay_key"] != "k-1" || len(l.MissingUIDs) != 0 {
				t.Fatalf("lead %+v", l)
			}
			st := sim.Stats()
			if st.Faults["webhook_stall"] != tt.wantStall || st.PHPBusy != 0 || st.PHPQueued != 0 {
				t.Fatalf("stats %+v, want %d webhook stalls and an idle pool", st, tt.wantStall)
			}
		})
	}
}

// TestPHPPoolQueues: a request beyond the pool waits for a worker.
func TestPHPPoolQueues(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{Faults: Faults{PHPWorkers: 1, Latency: Duration(2 * time.Second)}})
	first := addAsync(t.Context(), ts.URL, PathV1, "title", "first")
	waitFor(t, "the first request at work", func() bool { return sim.Stats().PHPBusy == 1 })
	second := addAsync(t.Context(), ts.URL, PathV1, "title", "second")
	waitFor(t, "the second request queued", func() bool { st := sim.Stats(); return st.PHPQueued == 1 && st.PHPBusy == 1 })
	for _, c := range []<-chan asyncAnswer{first, second} {
		if r := await(t, "an add", c); r.err != nil || !strings.Contains(r.a.body, "Success") {
			t.Fatalf("add: %v %+v", r.err, r.a)
		}
	}
	if st := sim.Stats(); st.Faults["php_queue"] != 1 || st.Leads != 2 || st.PHPBusy != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPHPPool(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tests := []struct {
		name string
		run  func(t *testing.T, p *phpPool)
	}{
		{"unlimited never waits", func(t *testing.T, p *phpPool) {
			for range 100 {
				if ok, waited := p.acquire(ctx, 0); !ok || waited {
					t.Fatal("waited with no limit")
				}
			}
		}},
		{"full pool times out", func(t *testing.T, p *phpPool) {
			p.setLimit(1)
			p.acquire(ctx, 0)
			if ok, waited := p.acquire(ctx, time.Millisecond); ok || !waited {
				t.Fatalf("ok=%v waited=%v, want a timeout", ok, waited)
			}
			if busy, waiting := p.counts(); busy != 1 || waiting != 0 {
				t.Fatalf("busy %d waiting %d", busy, waiting)
			}
		}},
		{"a cancelled waiter leaves the queue", func(t *testing.T, p *phpPool) {
			p.setLimit(1)
			p.acquire(ctx, 0)
			c, cancel := context.WithCancel(ctx)
			cancel()
			if ok, _ := p.acquire(c, 0); ok {
				t.Fatal("got a worker with a cancelled context")
			}
			p.release()
			if busy, waiting := p.counts(); busy != 0 || waiting != 0 {
				t.Fatalf("busy %d waiting %d", busy, waiting)
			}
		}},
		{"release hands over in order", func(t *testing.T, p *phpPool) {
			p.setLimit(1)
			p.acquire(ctx, 0)
			order := make(chan int, 2)
			for i := range 2 {
				go func() {
					if ok, _ := p.acquire(ctx, 0); ok {
						order <- i
					}
				}()
				waitFor(t, "the waiter queued", func() bool { _, w := p.counts(); return w == i+1 })
			}
			for want := range 2 {
				p.release()
				select {
				case got := <-order:
					if got != want {
						t.Fatalf("waiter %d served before %d", got, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no waiter served")
				}
			}
		}},
		{"a larger pool wakes waiters", func(t *testing.T, p *phpPool) {
			p.setLimit(1)
			p.acquire(ctx, 0)
			got := make(chan bool, 1)
			go func() { ok, _ := p.acquire(ctx, 0); got <- ok }()
			waitFor(t, "the waiter queued", func() bool { _, w := p.counts(); return w == 1 })
			p.setLimit(0)
			select {
			case ok := <-got:
				if !ok {
					t.Fatal("not served")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("waiter not woken by the larger pool")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, &phpPool{})
		})
	}
}

func TestFaultsValidateNew(t *testing.T) {
	t.Parallel()
	for _, bad := range []Faults{
		{StampGap: -1}, {StampKillRate: 1.5}, {LateCommitRate: -0.1}, {LateCommitDelay: -1},
		{PHPWorkers: -1}, {CPUs: -1}, {WebhookStall: -1}, {WebhookTime: -1}, {FatalStyle: "loud"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	var f Faults
	in := `{"fatal_style":"crm","v1_list_ignores_params":true,"stamp_gap":"5s","stamp_kill_rate":0.1,"late_commit_rate":0.05,"late_commit_delay":"40s","php_workers":8,"webhook_stall":"5s","webhook_time":"3ms"}`
	if err := json.Unmarshal([]byte(in), &f); err != nil || f.Validate() != nil {
		t.Fatalf("%v %v", err, f.Validate())
	}
	if f.PHPWorkers != 8 || f.StampGap != Duration(5*time.Second) || f.FatalStyle != FatalCRM || !f.V1ListIgnoresParams {
		t.Fatalf("decoded %+v", f)
	}
}

func TestLatencyShared(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		name string
		f    Faults
		n    int64
		want time.Duration
	}{
		{"no CPUs: fixed", Faults{Latency: Duration(20 * ms)}, 16, 20 * ms},
		{"fewer at work than CPUs", Faults{Latency: Duration(20 * ms), CPUs: 2}, 1, 20 * ms},
		{"as many as CPUs", Faults{Latency: Duration(20 * ms), CPUs: 2}, 2, 20 * ms},
		{"twice the CPUs", Faults{Latency: Duration(20 * ms), CPUs: 2}, 4, 40 * ms},
		{"eight on two", Faults{Latency: Duration(20 * ms), CPUs: 2}, 8, 80 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.f.latencyAt(tt.n); got != tt.want {
				t.Fatalf("latencyAt(%d) = %s, want %s", tt.n, got, tt.want)
			}
		})
	}
}
