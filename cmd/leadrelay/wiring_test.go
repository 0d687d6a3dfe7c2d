package main

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"leadrelay/crmsim"
	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

// notMetrics are names in the operators' files that look like metrics but
// are not.
var notMetrics = map[string]bool{
	"leadrelay_key":        true, // the v2 uid stamp
	"leadrelay_ops_device": true, // the ops login's device cookie
}

// cannotMove are documented metrics TestMetricsWiring's scenario cannot
// move; they must still be exported. Keep it short: every entry is a metric
// whose wiring this test does not prove.
var cannotMove = map[string]string{
	// Only a run of transient CRM failures opens the circuit (an outage),
	// and the gauge is back to 0 once it closes.
	"leadrelay_crm_circuit_open": "an outage",
	// TestCircuitCloseVisible watches it count an outage's open and close.
	"leadrelay_crm_circuit_changes_total": "an outage",
	// Only a CRM that refuses the relay's key sets it;
	// TestMetricsAndReadiness watches it move.
	"leadrelay_crm_config_problem": "a wrong CRM key",
	// Only a lead made twice in the CRM (audit's TestAuditFindsDuplicates
	// makes some), or one deleted there (audit's TestJudge), moves them.
	"leadrelay_audit_duplicates_total": "a duplicate in the CRM",
	"leadrelay_audit_missing_total":    "a lead deleted in the CRM",
	// Only a Redis that came back with older data moves it (worker's
	// TestRedisRollback).
	"leadrelay_redis_rollbacks_total": "a Redis rolled back",
	// Only a dead lead whose dead-letter write failed while asynq archived
	// it moves it (internal/app's TestSweepRecordsArchived).
	"leadrelay_dead_letters_recorded_late_total": "a dead letter lost with its Redis write",
	// Only a worker killed between asynq's completion and its own strip
	// leaves the strip sweep work (internal/app's TestStripSweep).
	"leadrelay_delivered_stripped_late_total": "a worker killed before its strip",
}

// TestMetricsWiring runs the relay binary as operators do (an intake and a
// worker process, a real Redis, the simulator), makes deliveries, a dead
// letter and refusals (400, 401, 429), and scrapes /metrics of every
// process. It fails when a metric that README.md, deploy/grafana,
// deploy/prometheus or the Helm chart's values name is missing, or never
// moved from its initial value (outside cannotMove). Unit tests call metrics.Metrics directly and
// cannot see a wrapper in internal/app that drops a method.
func TestMetricsWiring(t *testing.T) {
	t.Parallel()
	documented := documentedMetrics(t)
	bin := hatest.Binary(t)
	rds := redistest.Start(t)
	// 100ms a CRM answer, 2 adds in flight while the adaptive limit starts:
	// the backlog keeps the CRM busy past the limit's first measured epoch
	// (at least 20 answers over a second), so its metrics move.
	const latency, good = 100 * time.Millisecond, 40
	sim, crmURL := hatest.StartSim(t, latency)
	sim.SetFaults(crmsim.Faults{Latency: crmsim.Duration(latency), RejectMarker: "reject-me"})
	env := hatest.Env(rds.URL(), crmURL,
		"LEADRELAY_SITES=shop="+testSiteKey,
		"LEADRELAY_CRM_MAX_CONCURRENT=8",
		"LEADRELAY_AUDIT_INTERVAL=1s",
		fmt.Sprintf("LEADRELAY_SITE_MAX_QUEUED=%d", good+1), // the dead one counts too
	)
	intake := hatest.Start(t, bin, "intake", env, "intake")
	base := intake.URL()

	// The backlog, before any worker: good leads and one the CRM rejects.
	for i := range good {
		if code, body := postJSON(t, base, testSiteKey, "", map[string]any{"title": "Lead", "email": marker("wiring", i)}); code != http.StatusAccepted {
			t.Fatalf("lead %d: %d %v", i, code, body)
		}
	}
	code, body := postJSON(t, base, testSiteKey, "", map[string]any{"title": "Lead", "email": "dead@example.com", "description": "reject-me"})
	deadID, _ := body["id"].(string)
	if code != http.StatusAccepted || deadID == "" {
		t.Fatalf("lead to be rejected: %d %v", code, body)
	}
	refusals := []struct {
		name, key string
		lead      map[string]any
		want      int
	}{
		{"invalid", testSiteKey, map[string]any{"email": "not-an-email"}, http.StatusBadRequest},
		{"unknown key", "not-a-site-key-0123456789", map[string]any{"email": "x@example.com"}, http.StatusUnauthorized},
		{"backlog full", testSiteKey, map[string]any{"email": "one-too-many@example.com"}, http.StatusTooManyRequests},
	}
	for _, r := range refusals {
		if code, body := postJSON(t, base, r.key, "", r.lead); code != r.want {
			t.Errorf("%s: %d %v, want %d", r.name, code, body, r.want)
		}
	}

	// Scraped while leads wait, for the queue's gauges.
	var scrapes []map[string]float64
	waiting := scrapeProc(t, intake)
	if !hatest.WaitFor(10*time.Second, 50*time.Millisecond, func() bool {
		waiting = scrapeProc(t, intake)
		return waiting[`asynq_queue_latency_seconds{queue="leads"}`] > 0
	}) {
		t.Errorf("asynq_queue_latency_seconds never above 0 with %d leads pending", good+1)
	}
	scrapes = append(scrapes, waiting)

	worker := hatest.Start(t, bin, "worker", env, "worker")
	waitUntil(t, 90*time.Second, func() string {
		return fmt.Sprintf("%d of %d leads in the CRM, dead lead %v; worker log:\n%s", len(sim.Leads()), good, leadStatus(t, base, deadID)["status"], worker.Tail())
	}, func() bool { return len(sim.Leads()) >= good && leadStatus(t, base, deadID)["status"] == "dead" })
	var done map[string]float64
	waitUntil(t, 10*time.Second, func() string { return fmt.Sprintf("the worker did not count every outcome: %v", done) }, func() bool {
		done = scrapeProc(t, worker)
		return done[`leadrelay_deliveries_total{outcome="delivered"}`] >= good && done[`leadrelay_deliveries_total{outcome="dead"}`] >= 1 &&
			done["leadrelay_audit_checked_leads"] > 0
	})
	// A drop-in form in windows-1251 that says nothing of it: kept, and
	// counted for the operator.
	resp, err := http.Get(base + "/developer/v1/leads?login=shop&apikey=" + testSiteKey + "&action=add&title=%C8%E2%E0%ED&email=undecodable%40example.com")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-LeadRelay-Status") != "202" {
		t.Errorf("windows-1251 drop-in form: X-LeadRelay-Status %q, want 202 (kept)", resp.Header.Get("X-LeadRelay-Status"))
	}
	scrapes = append(scrapes, done, scrapeProc(t, intake))

	for _, name := range slices.Sorted(maps.Keys(documented)) {
		present, moved := false, false
		for _, s := range scrapes {
			p, m := family(s, name)
			present, moved = present || p, moved || m
		}
		switch _, allowed := cannotMove[name]; {
		case !present:
			t.Errorf("%s (named in %s) is exported by no process (a name that is no metric goes in notMetrics)", name, strings.Join(documented[name], ", "))
		case !moved && !allowed:
			t.Errorf("%s (named in %s) never moved from its initial value", name, strings.Join(documented[name], ", "))
		}
	}
	for name, why := range cannotMove {
		if documented[name] == nil {
			t.Errorf("cannotMove names %s (moved by %s), which no operators' file names: drop it", name, why)
		}
	}
	// The refusals are counted, each under its own outcome.
	for _, outcome := range []string{"invalid", "unauthorized", "backlog_full"} {
		if n := sumOf(scrapes[len(scrapes)-1], "leadrelay_intake_requests_total", `outcome="`+outcome+`"`); n != 1 {
			t.Errorf("leadrelay_intake_requests_total{outcome=%q} = %v, want 1", outcome, n)
		}
	}
}

// TestWorkersShareAHost: two worker processes with the same environment,
// which names neither LEADRELAY_HTTP_ADDR nor LEADRELAY_OPS_ADDR, both
// start on one host (before, the second exited: its default ops address
// was taken), both answer health and metrics on the ops listener their
// banner names, and each delivers: the first while it runs alone, the
// second once the first has stopped.
func TestWorkersShareAHost(t *testing.T) {
	t.Parallel()
	bin := hatest.Binary(t)
	rds := redistest.Start(t)
	sim, crmURL := hatest.StartSim(t, 0)
	env := hatest.Env(rds.URL(), crmURL)
	intake := hatest.Start(t, bin, "intake", env, "intake")
	workerEnv := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "LEADRELAY_HTTP_ADDR=") || strings.HasPrefix(kv, "LEADRELAY_OPS_ADDR=")
	})
	deliver := func(w *hatest.Proc, email string) {
		t.Helper()
		if code, body := postJSON(t, intake.URL(), hatest.SiteKey, "", map[string]any{"title": "Lead", "email": email}); code != http.StatusAccepted {
			t.Fatalf("lead %s: %d %v", email, code, body)
		}
		waitUntil(t, 30*time.Second, func() string { return fmt.Sprintf("%s not delivered; %s log:\n%s", email, w.Name, w.Tail()) },
			func() bool { return countByEmail(sim)[email] == 1 })
	}
	w1 := hatest.Start(t, bin, "worker1", workerEnv, "worker")
	deliver(w1, "first@example.com")
	w2 := hatest.Start(t, bin, "worker2", workerEnv, "worker")
	for _, w := range []*hatest.Proc{w1, w2} {
		if w.Count("LeadRelay ") == 0 || w.Count("no site listener") == 0 {
			t.Errorf("%s's banner does not say it has no site listener:\n%s", w.Name, w.Tail())
		}
		if code, body := get(t, opsBase(w)+"/readyz"); code != http.StatusOK {
			t.Errorf("%s /readyz on %s: %d %s", w.Name, w.MetricsURL(), code, body)
		}
		if _, ok := scrapeProc(t, w)[`leadrelay_crm_circuit_open`]; !ok {
			t.Errorf("%s's /metrics lacks the worker's metrics", w.Name)
		}
	}
	if w1.MetricsURL() == w2.MetricsURL() {
		t.Errorf("both workers name %s", w1.MetricsURL())
	}
	w1.Terminate(10 * time.Second)
	deliver(w2, "second@example.com")
}

var metricName = regexp.MustCompile(`\b(?:leadrelay|asynq)_[a-z0-9_]*[a-z0-9]`)

// documentedMetrics is every metric name README.md, the Grafana
// dashboards, the Prometheus rules and the Helm chart's values (its
// autoscaler) use, with the files naming it.
func documentedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../../README.md", "../../deploy/grafana/*.json", "../../deploy/prometheus/*.yml", "../../deploy/helm/*/values.yaml"} {
		matched, err := filepath.Glob(pattern)
		if err != nil || len(matched) == 0 {
			t.Fatalf("%s: no file (%v)", pattern, err)
		}
		files = append(files, matched...)
	}
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names := metricName.FindAllString(string(b), -1)
		if len(names) == 0 {
			t.Errorf("%s names no metric", f)
		}
		for _, n := range names {
			rel := strings.TrimPrefix(f, "../../")
			if !notMetrics[n] && !slices.Contains(out[n], rel) {
				out[n] = append(out[n], rel)
			}
		}
	}
	return out
}

// scrapeProc scrapes the /metrics of a relay process, with the operators'
// credentials (the ops listener asks for them).
func scrapeProc(t *testing.T, p *hatest.Proc) map[string]float64 {
	t.Helper()
	if !hatest.WaitFor(10*time.Second, 20*time.Millisecond, func() bool { return p.Count("metrics: ") > 0 }) {
		t.Fatalf("%s printed no metrics address; log:\n%s", p.Name, p.Tail())
	}
	return scrape(t, opsBase(p))
}

// opsBase is the base URL of p's ops listener, with the operators'
// credentials in it.
func opsBase(p *hatest.Proc) string {
	return strings.Replace(p.MetricsURL(), "http://", "http://"+hatest.OpsUser+":"+hatest.OpsPassword+"@", 1)
}

// family reports whether scrape holds a series of the metric name (or of
// the histogram name, as its _bucket, _sum and _count), and whether any of
// them is not 0.
func family(scrape map[string]float64, name string) (present, moved bool) {
	for series, v := range scrape {
		switch n, _, _ := strings.Cut(series, "{"); n {
		case name, name + "_bucket", name + "_sum", name + "_count":
			present, moved = true, moved || v != 0
		}
	}
	return present, moved
}

// sumOf adds the values of family name's series whose labels contain label.
func sumOf(scrape map[string]float64, name, label string) float64 {
	var sum float64
	for series, v := range scrape {
		if n, labels, _ := strings.Cut(series, "{"); n == name && strings.Contains(labels, label) {
			sum += v
		}
	}
	return sum
}
