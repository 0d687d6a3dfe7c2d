package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

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
		ops := strings.Replace(w.MetricsURL(), "http://", "http://"+hatest.OpsUser+":"+hatest.OpsPassword+"@", 1)
		if code, body := get(t, ops+"/readyz"); code != http.StatusOK {
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
