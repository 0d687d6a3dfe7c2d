package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/audit"
	"leadrelay/deadletter"
	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
	"leadrelay/internal/seal"
	"leadrelay/lead"
)

const (
	crmKey       = "chaos-crm-key-0123456789"
	siteKey      = "chaos-site-key-0123456789"
	rejectMarker = "#reject-me"
)

// suite is one chaos run's knobs.
type suite struct {
	name       string
	api        string // v1 or v2
	leads      int
	failEvery  int // every failEvery-th lead is built to be rejected by the CRM
	outage     time.Duration
	outageMode string
	// faults are simulator faults of this run beside the common ones.
	faults map[string]any
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite skipped in -short mode")
	}
	// The two runs of the real CRM's shapes publish 3,000 leads each, so
	// the four runs fit CI's time; 3,000 is already 15 pages of the v1
	// list that shows only the newest 200.
	for _, s := range []suite{
		{name: "v1", api: "v1", leads: 5000, failEvery: 250, outage: 30 * time.Second, outageMode: "503"},
		// The shipped v1 list ignores every parameter: only the newest
		// 200 are ever visible.
		{name: "v1-list-ignores-params", api: "v1", leads: 3000, failEvery: 250, outage: 30 * time.Second, outageMode: "503",
			faults: map[string]any{"v1_list_ignores_params": true}},
		{name: "v2", api: "v2", leads: 5000, failEvery: 250, outage: 30 * time.Second, outageMode: "refuse"},
		// The real v2 add stores the lead, then calls webhooks, then
		// stamps it; some adds die in between and stay unstamped.
		{name: "v2-stampless", api: "v2", leads: 3000, failEvery: 250, outage: 30 * time.Second, outageMode: "refuse",
			faults: map[string]any{"stamp_gap": "300ms", "stamp_kill_rate": 0.03}},
	} {
		t.Run(s.name, func(t *testing.T) { s.run(t) })
	}
}

func (s suite) run(t *testing.T) {
	ctx := context.Background()
	rds := redistest.Start(t)
	bin := hatest.Binary(t)
	simPort := redistest.FreePort(t)
	sim := hatest.Start(t, hatest.SimBinary(t), "crmsim", nil,
		"--addr", "127.0.0.1:"+strconv.Itoa(simPort), "--api", "both", "--login", "admin@example.com",
		"--apikey", crmKey, "--seed", "42", "--reject-marker", rejectMarker)
	baseFaults := map[string]any{"error_rate": 0.2, "error_status": 503, "ambiguous_rate": 0.05, "reject_marker": rejectMarker}
	for k, v := range s.faults {
		baseFaults[k] = v
	}
	setFaults(t, sim.URL(), baseFaults)

	// hatest's relay with this run's keys and API version, more retries,
	// and a circuit breaker the steady 20% of 5xx answers alone do not trip.
	env := hatest.Env(rds.URL(), sim.URL(),
		"LEADRELAY_CRM_API="+s.api,
		"LEADRELAY_CRM_APIKEY="+crmKey,
		"LEADRELAY_SITES=shop="+siteKey,
		"LEADRELAY_RETRY_MAX_DELAY=3s",
		"LEADRELAY_MAX_RETRY=25",
		"LEADRELAY_BREAKER_THRESHOLD=20",
		"LEADRELAY_BREAKER_COOLDOWN=2s",
		"LEADRELAY_CONCURRENCY=20",
	)
	intake, workers := hatest.StartRelay(t, bin, env, 3)

	// Publish in the background while the faults happen.
	pub := &publisher{base: intake.URL, api: s.api, failEvery: s.failEvery}
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.run(ctx, s.leads) }()

	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	killWorker := func() {
		w := workers[rng.Intn(len(workers))]
		t.Logf("kill -9 %s", w.Name)
		w.Kill()
		time.Sleep(500 * time.Millisecond)
		w.Restart()
	}
	time.Sleep(3 * time.Second)
	killWorker()
	t.Logf("CRM outage (%s) for %s", s.outageMode, s.outage)
	outage := map[string]any{"outage": map[string]any{"mode": s.outageMode, "for": s.outage.String()}}
	for k, v := range baseFaults {
		outage[k] = v
	}
	if err := hatest.SetSimFaults(sim.URL(), outage); err != nil && s.outageMode != "refuse" {
		// In refuse mode the simulator may drop this very connection.
		t.Fatal(err)
	}
	time.Sleep(s.outage / 2)
	killWorker()
	time.Sleep(s.outage/2 + time.Second)
	// The simulator ends the outage by itself; put the base faults back.
	if !hatest.WaitFor(20*time.Second, 200*time.Millisecond, func() bool { return hatest.SetSimFaults(sim.URL(), baseFaults) == nil }) {
		t.Fatal("simulator did not come back after the outage")
	}
	t.Log("redis restart (kill -9, AOF replay)")
	rds.Restart()
	killWorker()
	lastFault := time.Now()

	select {
	case <-pubDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("publishing did not finish within 3 minutes")
	}
	// Stop injecting errors so the tail drains quickly; ambiguity and the
	// run's own faults stay.
	tail := map[string]any{"ambiguous_rate": 0.05, "reject_marker": rejectMarker}
	for k, v := range s.faults {
		tail[k] = v
	}
	setFaults(t, sim.URL(), tail)

	rc := rds.Client()
	insp := asynq.NewInspectorFromRedisClient(rc)
	drained := hatest.WaitFor(5*time.Minute, time.Second, func() bool {
		qi, err := insp.GetQueueInfo("leads")
		return err == nil && qi.Pending+qi.Active+qi.Scheduled+qi.Retry == 0
	})
	if !drained {
		qi, err := insp.GetQueueInfo("leads")
		t.Fatalf("queue did not drain within 5 minutes: %+v %v", qi, err)
	}

	// Count what reached the CRM, by the marker each lead carries in its e-mail.
	stored := hatest.SimLeads(t, sim.URL())
	perMarker := map[string]int{}
	firstIn := map[string]time.Time{}
	var lastIn time.Time
	for _, l := range stored {
		perMarker[l.Email]++
		if f, ok := firstIn[l.Email]; !ok || l.Datum.Before(f) {
			firstIn[l.Email] = l.Datum
		}
		if l.Datum.After(lastIn) {
			lastIn = l.Datum
		}
	}
	dead, _, err := deadletter.New(rc).List(ctx, deadletter.Filter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	// Dead letters keep the lead sealed under the relays' data keys.
	keys, err := seal.Parse(hatest.DataKeys)
	if err != nil {
		t.Fatal(err)
	}
	codec := lead.NewCodec(keys)
	deadByEmail := map[string]deadletter.Record{}
	for _, d := range dead {
		p, err := codec.Decode(d.Payload)
		if err != nil {
			t.Errorf("dead letter %s does not open: %v", d.LeadID, err)
			continue
		}
		deadByEmail[p.Lead.Email] = d
	}

	acked := pub.ackedLeads()
	var lost, duplicated, wrongDead, deadOK int
	var latencies []time.Duration
	for _, l := range acked {
		n := perMarker[l.email]
		if n > 0 {
			latencies = append(latencies, max(firstIn[l.email].Sub(l.at), 0))
		}
		switch {
		case l.mustFail:
			if n != 0 {
				t.Errorf("lead %s built to fail reached the CRM %d times", l.email, n)
			}
			d, ok := deadByEmail[l.email]
			if !ok {
				lost++
				t.Errorf("lead %s built to fail is not in the dead-letter store", l.email)
			} else if d.Reason.IsZero() {
				t.Errorf("dead lead %s has no reason", l.email)
			} else {
				deadOK++
			}
		case n == 0:
			lost++
			if lost <= 10 {
				t.Errorf("LOST: acknowledged lead %s (%s, %s) is not in the CRM%s", l.email, l.via, l.id, history(workers, l.id))
			}
		case n > 1:
			duplicated++
			if duplicated <= 10 {
				t.Errorf("DUPLICATE: lead %s (%s) is %d times in the CRM%s", l.email, l.id, n, history(workers, l.id))
			}
		}
		if _, ok := deadByEmail[l.email]; ok && !l.mustFail {
			wrongDead++
			t.Errorf("lead %s was dead-lettered but should have been delivered: %s", l.email, deadByEmail[l.email].Reason)
		}
	}
	var reconciled, notFound, unknown, shifted int
	for _, w := range workers {
		for _, msg := range []string{`"msg":"reconciled"`, `"msg":"reconciled at once"`} {
			reconciled += w.Count(msg, `"reconcile":"found"`)
			notFound += w.Count(msg, `"reconcile":"not_found"`)
			unknown += w.Count(msg, `"reconcile":"unknown"`)
		}
		shifted += w.Count(`a full page of new leads arrived`)
	}
	delivered := 0
	for _, n := range perMarker {
		if n > 0 {
			delivered++
		}
	}
	p50, p99 := percentile(latencies, 0.50), percentile(latencies, 0.99)
	settled := max(lastIn.Sub(lastFault), 0)
	summary := fmt.Sprintf("chaos: published=%d delivered=%d lost=%d duplicated=%d dead=%d reconciled=%d (run=%s ack_to_crm_p50=%s ack_to_crm_p99=%s last_in_crm_after_last_fault=%s reconcile_not_found=%d reconcile_unknown=%d page_shifts=%d rejected_by_intake=%d crm_faults=%s)",
		len(acked), delivered, lost, duplicated, deadOK, reconciled, s.name, p50.Round(time.Millisecond), p99.Round(time.Millisecond),
		settled.Round(time.Second), notFound, unknown, shifted, pub.rejected.Load(), simFaults(sim.URL()))
	t.Log(summary)
	// go test hides a passing package's output; CI prints this file.
	if path := os.Getenv("LEADRELAY_CHAOS_SUMMARY"); path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintln(f, summary)
			f.Close()
		}
	}
	if len(acked) < s.leads {
		t.Errorf("only %d of %d leads were acknowledged by intake", len(acked), s.leads)
	}
	if len(dead) != deadOK {
		t.Errorf("the dead-letter store holds %d leads, want only the %d built to fail", len(dead), deadOK)
	}
	if qi, err := insp.GetQueueInfo("leads"); err != nil || qi.Archived != deadOK {
		t.Errorf("asynq's archive: %+v %v, want %d dead", qi, err, deadOK)
	}
	if lost != 0 || duplicated != 0 || wrongDead != 0 {
		t.Fatalf("exactly-once broken: %s", summary)
	}
	// The relay's own audit, run as an operator would, must agree: a
	// clean run has no duplicate and no missing lead (issue 17).
	rep := auditNow(t, bin, env)
	t.Logf("ctl audit --now: %s", rep.Line())
	if len(rep.Duplicates) != 0 || len(rep.Missing) != 0 || rep.Unreadable != 0 || rep.Checked < delivered*9/10 {
		t.Errorf("the relay's audit of a clean run: %+v, want no duplicate, no missing and about %d checked", rep, delivered)
	}
}

// auditNow runs `leadrelay ctl --json audit --now` with the relays'
// environment and returns its report.
func auditNow(t *testing.T, bin string, env []string) audit.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "ctl", "--json", "audit", "--now")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ctl audit --now: %v\n%s", err, stderr.String())
	}
	var rep audit.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ctl audit --now answered %q: %v", out, err)
	}
	return rep
}

// publisher plays the sites: it sends leads through both intake surfaces and,
// like a careful site, sends again with the same key when intake is
// unavailable.
type publisher struct {
	base      func() string
	api       string
	failEvery int
	rejected  atomic.Int64

	mu    sync.Mutex
	acked []ackedLead
}

type ackedLead struct {
	email, via string
	at         time.Time // when intake acknowledged it
	id         string    // LeadRelay's id, for finding the lead in worker logs
	mustFail   bool
}

func (p *publisher) ackedLeads() []ackedLead {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ackedLead(nil), p.acked...)
}

func (p *publisher) run(ctx context.Context, n int) {
	client := &http.Client{Timeout: 5 * time.Second}
	hatest.Each(n, 8, func(i int) { p.publish(ctx, client, i) })
}

func (p *publisher) publish(ctx context.Context, client *http.Client, i int) {
	email := fmt.Sprintf("chaos-%s-%05d@example.com", p.api, i)
	desc := fmt.Sprintf("chaos lead %d", i)
	mustFail := p.failEvery > 0 && i%p.failEvery == p.failEvery-1
	if mustFail {
		desc += " " + rejectMarker
	}
	via := "json"
	if i%2 == 1 {
		via = "dropin"
	}
	fields := map[string]string{"title": fmt.Sprintf("Chaos %d", i), "email": email, "description": desc, "phone": fmt.Sprintf("+7900%07d", i)}
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		var (
			ok   bool
			code int
			id   string
			err  error
		)
		if via == "json" {
			code, id, err = hatest.Post(ctx, client, p.base(), siteKey, email, fields)
			ok = code == http.StatusAccepted || code == http.StatusOK
		} else {
			ok, code, id, err = postDropIn(ctx, client, p.base(), fields)
		}
		if err == nil {
			if ok {
				p.mu.Lock()
				p.acked = append(p.acked, ackedLead{email: email, via: via, id: id, mustFail: mustFail, at: time.Now()})
				p.mu.Unlock()
				return
			}
			if code != http.StatusServiceUnavailable {
				p.rejected.Add(1)
				return
			}
		}
		time.Sleep(time.Duration(50+attempt*50) * time.Millisecond)
	}
}

// postDropIn posts a lead of the given fields to intake's v1 drop-in, as
// an old site's form does, and says whether it was taken ("Success"), with
// the status and the lead id intake answered.
func postDropIn(ctx context.Context, client *http.Client, base string, fields map[string]string) (ok bool, code int, id string, err error) {
	form := url.Values{"login": {"shop"}, "apikey": {siteKey}, "action": {"add"}}
	for k, v := range fields {
		form.Set(k, v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/developer/v1/leads", strings.NewReader(form.Encode()))
	if err != nil {
		return false, 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return false, 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a struct {
		Result struct {
			ID string `json:"id"`
		} `json:"result"`
	}
	_ = json.Unmarshal(b, &a)
	return resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"Success"`)), resp.StatusCode, a.Result.ID, nil
}

// history is what the workers logged about one lead, for a failure message.
func history(workers []*hatest.Proc, id string) string {
	if id == "" {
		return ""
	}
	var b strings.Builder
	for _, w := range workers {
		lines := w.Lines(id)
		for _, line := range lines[:min(20, len(lines))] {
			fmt.Fprintf(&b, "\n    %s: %s", w.Name, line)
		}
	}
	return b.String()
}

// percentile returns the q-quantile of ds (0 when empty).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, k int) bool { return s[i] < s[k] })
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// simFaults returns the simulator's count of injected faults by kind.
func simFaults(base string) string {
	resp, err := http.Get(base + "/_sim/stats")
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	var st struct {
		Faults map[string]int64 `json:"faults"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return "?"
	}
	b, _ := json.Marshal(st.Faults)
	return string(b)
}

func setFaults(t *testing.T, base string, f map[string]any) {
	t.Helper()
	if err := hatest.SetSimFaults(base, f); err != nil {
		t.Fatal(err)
	}
}
