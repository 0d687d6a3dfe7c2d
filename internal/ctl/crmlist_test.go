package ctl

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"leadrelay/config"
	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/lead"
)

// TestCRMListIgnoredDates: against a v1 CRM whose list ignores its
// parameters, crm list --since/--until says so and shows only the leads
// within the range.
func TestCRMListIgnoredDates(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	clock := time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)
	sim, err := crmsim.New(crmsim.Config{APIKey: crmKey, Clock: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	crm, err := crmclient.New(hs.URL, crmLogin, crmKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, day := range []time.Time{time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)} {
		mu.Lock()
		clock = day
		mu.Unlock()
		if _, err := crm.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "x", Email: strings.ToLower(day.Format("Jan02")) + "@example.com"}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"LEADRELAY_REDIS_URL": "redis://127.0.0.1:1/0", "LEADRELAY_CRM_URL": hs.URL,
			"LEADRELAY_CRM_LOGIN": crmLogin, "LEADRELAY_CRM_APIKEY": crmKey}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		ignore      bool
		wantWarning bool
	}{
		{"CRM filters", false, false},
		{"CRM ignores the dates", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim.SetFaults(crmsim.Faults{V1ListIgnoresParams: tc.ignore})
			var out, errb bytes.Buffer
			err := RunWith(t.Context(), []string{"crm", "list", "--since", "2026-03-01", "--until", "2026-03-31"}, cfg, &out, &errb, Options{})
			if err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			if strings.Contains(out.String(), "feb10@") || !strings.Contains(out.String(), "mar05@") || !strings.Contains(out.String(), "mar20@") {
				t.Errorf("list shows:\n%s", out.String())
			}
			if got := strings.Contains(errb.String(), "the CRM ignored --since/--until"); got != tc.wantWarning {
				t.Errorf("warning %v, want %v: %q", got, tc.wantWarning, errb.String())
			}
		})
	}
}
