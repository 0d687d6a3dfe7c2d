package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadrelay/crmsim"
	"leadrelay/internal/redistest"
)

// TestMetricsAndReadiness: serve against a real Redis and the simulator.
// /metrics shows intake requests, deliveries, CRM latency, queue sizes and
// the end-to-end latency; a wrong CRM key turns /readyz 503 with the fix in
// the ops listener's body (the site listener's says only "not ready") and
// sets leadrelay_crm_config_problem, and once the key works again the
// paused lead is delivered and /readyz is 200.
func TestMetricsAndReadiness(t *testing.T) {
	t.Parallel()
	_, sim, env := backends(t, "v2")
	env["LEADRELAY_BREAKER_COOLDOWN"] = "300ms"
	in := startApp(t, env, "serve")

	const n = 5
	for i := range n {
		if code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"title": "Lead", "email": marker("metrics", i)}); code != http.StatusAccepted {
			t.Fatalf("lead %d: %d %v", i, code, body)
		}
	}
	if code, _ := postJSON(t, in.URL, "not-a-site-key-0123456789", "", map[string]any{"email": "x@example.com"}); code != http.StatusUnauthorized {
		t.Fatalf("wrong site key: %d, want 401", code)
	}

	var m map[string]float64
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprintf("delivered metric never reached %d: %v", n, m) }, func() bool {
		m = scrape(t, in.OpsURL)
		return m[`leadrelay_deliveries_total{outcome="delivered"}`] == n &&
			m[`leadrelay_lead_delivery_latency_seconds_count`] == n &&
			m[`asynq_tasks_enqueued_total{queue="leads",state="completed"}`] == n
	})
	for series, want := range map[string]float64{
		`leadrelay_intake_requests_total{outcome="accepted",site="shop"}`:        n,
		`leadrelay_intake_requests_total{outcome="unauthorized",site="unknown"}`: 1,
		`leadrelay_enqueue_duration_seconds_count`:                               n,
		`leadrelay_crm_request_duration_seconds_count{action="add",class="ok"}`:  n,
		`leadrelay_lead_delivery_latency_seconds_count`:                          n,
		`leadrelay_deliveries_total{outcome="dead"}`:                             0,
		`leadrelay_crm_circuit_open`:                                             0,
		`leadrelay_crm_config_problem`:                                           0,
		`asynq_queue_size{queue="leads"}`:                                        n, // completed tasks are kept for de-duplication
		`asynq_tasks_enqueued_total{queue="leads",state="pending"}`:              0,
		`asynq_tasks_enqueued_total{queue="leads",state="completed"}`:            n,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if m[`leadrelay_lead_delivery_latency_seconds_sum`] <= 0 {
		t.Errorf("end-to-end latency sum = %v, want > 0", m[`leadrelay_lead_delivery_latency_seconds_sum`])
	}
	code, body := get(t, in.OpsURL+"/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"name":"crm_circuit","ok":true,"info":"closed"`) {
		t.Errorf("/readyz = %d %s, want 200 with the circuit closed", code, body)
	}

	// A wrong CRM key: not the lead's fault, so the lead is paused and the
	// worker is not ready, saying what to fix.
	sim.SetFaults(crmsim.Faults{AuthFail: true})
	if code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": marker("metrics", n)}); code != http.StatusAccepted {
		t.Fatalf("lead during auth failure: %d %v", code, body)
	}
	waitUntil(t, 20*time.Second, func() string { return "/readyz never reported the config problem: " + body }, func() bool {
		code, body = get(t, in.OpsURL+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	for _, want := range []string{`"status":"not ready"`, `"name":"crm","ok":false`, "CRM configuration problem", "LEADRELAY_CRM_APIKEY"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz body lacks %q: %s", want, body)
		}
	}
	// The site listener's /readyz, which sites reach, says only that.
	if code, body := get(t, in.URL+"/readyz"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"status":"not ready"}` {
		t.Errorf("site listener's /readyz = %d %s, want 503 and no reason", code, body)
	}
	m = scrape(t, in.OpsURL)
	if m[`leadrelay_crm_config_problem`] != 1 || m[`leadrelay_deliveries_total{outcome="paused"}`] < 1 ||
		m[`leadrelay_crm_request_duration_seconds_count{action="add",class="config"}`] < 1 {
		t.Errorf("metrics during the config problem: config_problem %v, paused %v, add/config %v",
			m[`leadrelay_crm_config_problem`], m[`leadrelay_deliveries_total{outcome="paused"}`],
			m[`leadrelay_crm_request_duration_seconds_count{action="add",class="config"}`])
	}

	// Fixed: the paused lead goes through, readiness comes back.
	sim.SetFaults(crmsim.Faults{})
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprintf("%d of %d leads in the CRM", len(sim.Leads()), n+1) },
		func() bool { return len(sim.Leads()) == n+1 })
	waitUntil(t, 10*time.Second, func() string { return "/readyz still " + body }, func() bool {
		code, body = get(t, in.OpsURL+"/readyz")
		return code == http.StatusOK
	})
	m = scrape(t, in.OpsURL)
	if m[`leadrelay_crm_config_problem`] != 0 || m[`leadrelay_deliveries_total{outcome="delivered"}`] != n+1 ||
		m[`leadrelay_deliveries_total{outcome="dead"}`] != 0 {
		t.Errorf("after the fix: config_problem %v, delivered %v, dead %v", m[`leadrelay_crm_config_problem`],
			m[`leadrelay_deliveries_total{outcome="delivered"}`], m[`leadrelay_deliveries_total{outcome="dead"}`])
	}
}

// TestCircuitCloseVisible: a running relay tells operators when the CRM's
// circuit closes, not only when it opens (issue 20): a log line and the
// metrics, for an outage that opens it and a CRM that comes back.
func TestCircuitCloseVisible(t *testing.T) {
	t.Parallel()
	_, sim, env := backends(t, "v2")
	env["LEADRELAY_BREAKER_COOLDOWN"] = "300ms"
	sim.SetFaults(crmsim.Faults{Outage: &crmsim.Outage{Mode: crmsim.OutageHTTP503}})
	in := startApp(t, env, "serve")

	const n = 6
	for i := range n {
		if code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"title": "Lead", "email": marker("circuit", i)}); code != http.StatusAccepted {
			t.Fatalf("lead %d: %d %v", i, code, body)
		}
	}
	var m map[string]float64
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprintf("the circuit never opened: %v", m) }, func() bool {
		m = scrape(t, in.OpsURL)
		return m[`leadrelay_crm_circuit_open`] == 1 && strings.Contains(in.stderr.String(), "CRM circuit opened")
	})

	sim.SetFaults(crmsim.Faults{})
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprintf("%d of %d leads in the CRM", len(sim.Leads()), n) },
		func() bool { return len(sim.Leads()) == n })
	waitUntil(t, 10*time.Second, func() string { return fmt.Sprintf("the close was not exported: %v", m) }, func() bool {
		m = scrape(t, in.OpsURL)
		return m[`leadrelay_crm_circuit_open`] == 0 && m[`leadrelay_crm_circuit_changes_total{to="closed"}`] == 1
	})
	if got := m[`leadrelay_crm_circuit_changes_total{to="open"}`]; got != 1 {
		t.Errorf(`leadrelay_crm_circuit_changes_total{to="open"} = %v, want 1: one outage`, got)
	}
	if logs := in.stderr.String(); strings.Count(logs, "CRM circuit closed") != 1 {
		t.Errorf("the circuit's close was logged %d times, want once:\n%s", strings.Count(logs, "CRM circuit closed"), logs)
	}
}

// TestCRMKeyNeverLeaks runs the whole flow (both intake APIs, a wrong-key
// pause, ambiguous adds and their reconcile) with debug logs, and looks for
// the CRM key in every log line, /metrics, /readyz, intake answer and task
// in Redis.
func TestCRMKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	rds, sim, env := backends(t, "v1") // v1 sends the key in the query
	env["LEADRELAY_LOG_LEVEL"] = "debug"
	env["LEADRELAY_BREAKER_COOLDOWN"] = "300ms"
	in := startApp(t, env, "serve")

	var answers []string
	seen := func(where, s string) {
		t.Helper()
		if strings.Contains(s, testCRMKey) {
			t.Errorf("the CRM key is in %s: %s", where, s)
		}
	}
	sim.SetFaults(crmsim.Faults{AuthFail: true})
	_, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": "paused@example.com"})
	answers = append(answers, fmt.Sprint(body))
	waitUntil(t, 20*time.Second, func() string { return "/readyz never turned 503" }, func() bool {
		code, body := get(t, in.OpsURL+"/readyz")
		seen("/readyz", body)
		return code == http.StatusServiceUnavailable
	})
	tasks := scanTasks(t, rds)
	if len(tasks) == 0 {
		t.Error("no task hash found in Redis")
	}
	for _, s := range tasks {
		seen("a task in Redis", s)
	}

	sim.SetFaults(crmsim.Faults{AmbiguousRate: 0.5})
	const n = 6
	for i := range n {
		_, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": marker("leak", i), "description": "call me"})
		answers = append(answers, fmt.Sprint(body))
	}
	resp, err := http.PostForm(in.URL+"/developer/v1/leads?login=shop&apikey="+testSiteKey+"&action=add&title=Drop+in&email=dropin%40example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	answers = append(answers, string(b))
	for _, wrong := range []string{testCRMKey, "nope"} { // a site sending the CRM key as its own
		_, body := postJSON(t, in.URL, wrong, "", map[string]any{"email": "x@example.com"})
		answers = append(answers, fmt.Sprint(body))
	}
	waitUntil(t, 60*time.Second, func() string { return fmt.Sprintf("%d of %d leads in the CRM", len(sim.Leads()), n+2) },
		func() bool { return len(sim.Leads()) >= n+2 })

	for _, a := range answers {
		seen("an intake answer", a)
	}
	for _, s := range scanTasks(t, rds) {
		seen("a task in Redis", s)
	}
	_, metricsText := get(t, in.OpsURL+"/metrics")
	seen("/metrics", metricsText)
	_, ready := get(t, in.OpsURL+"/readyz")
	seen("/readyz", ready)
	_, health := get(t, in.URL+"/healthz")
	seen("/healthz", health)
	for _, state := range []string{"completed", "retry"} { // the ops UI shows task payloads
		code, ui := get(t, in.OpsURL+"/ui/api/queues/leads/"+state+"_tasks")
		if code != http.StatusOK || !strings.Contains(ui, "tasks") {
			t.Errorf("ops UI %s tasks: %d %.200s", state, code, ui)
		}
		seen("the ops UI", ui)
	}
	in.stop(t)
	logs := in.stderr.String()
	if !strings.Contains(logs, `"level":"debug"`) && !strings.Contains(logs, "DEBUG") {
		t.Errorf("no debug log lines: the test would miss what they log")
	}
	if !strings.Contains(logs, "CRM configuration problem") {
		t.Error("the wrong-key pause was not logged: the test would miss what it logs")
	}
	for _, line := range strings.Split(logs, "\n") {
		seen("a log line", line)
	}
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape reads /metrics in the text format into series -> value, the
// series as printed (name{labels}).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// scanTasks returns every field of every asynq task hash in Redis.
func scanTasks(t *testing.T, rds *redistest.Server) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c := rds.Client()
	var out []string
	iter := c.Scan(ctx, 0, "asynq:{*}:t:*", 100).Iterator()
	for iter.Next(ctx) {
		fields, err := c.HGetAll(ctx, iter.Val()).Result()
		if err != nil {
			continue // not a hash, or gone
		}
		for k, v := range fields {
			out = append(out, iter.Val()+" "+k+"="+v)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
