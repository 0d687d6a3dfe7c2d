package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"leadrelay/crmsim"
)

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
