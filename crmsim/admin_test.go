package crmsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func adminDo(t *testing.T, method, url, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{})
	addV2(t, ts.URL, "title", "one", "uids[relay]", "r1")
	addV2(t, ts.URL, "title", "two", "uids[relay]", "r1") // the CRM does not de-duplicate

	a := adminDo(t, "GET", ts.URL+"/_sim/leads", "")
	var leads []StoredLead
	if err := json.Unmarshal([]byte(a.body), &leads); err != nil || a.status != 200 {
		t.Fatalf("leads: %d %v %s", a.status, err, a.body)
	}
	if len(leads) != 2 || leads[1].UIDs["relay"] != "r1" || leads[0].Title != "one" {
		t.Fatalf("leads %+v", leads)
	}

	a = adminDo(t, "POST", ts.URL+"/_sim/leads/2/status", `{"status":3,"rezult":2}`)
	if a.status != 200 {
		t.Fatalf("status: %d %s", a.status, a.body)
	}
	if l, _ := sim.Lead(2); l.Status != StatusClosed || l.Rezult != 2 || l.DatumDo.IsZero() {
		t.Fatalf("lead 2 %+v", l)
	}
	for _, bad := range []struct{ path, body string }{
		{"/_sim/leads/9/status", `{"status":2}`}, {"/_sim/leads/x/status", `{"status":2}`},
		{"/_sim/leads/1/status", `{"status":7}`}, {"/_sim/leads/1/status", `{}`},
		{"/_sim/faults", `{"error_rate":3}`}, {"/_sim/faults", `{"nope":1}`},
	} {
		if a := adminDo(t, "POST", ts.URL+bad.path, bad.body); a.status < 400 {
			t.Errorf("POST %s %s: HTTP %d", bad.path, bad.body, a.status)
		}
	}

	a = adminDo(t, "POST", ts.URL+"/_sim/faults", `{"fatal_rate":1,"outage":{"mode":"503","for":"1h"}}`)
	if a.status != 200 {
		t.Fatalf("set faults: %d %s", a.status, a.body)
	}
	var f Faults
	json.Unmarshal([]byte(adminDo(t, "GET", ts.URL+"/_sim/faults", "").body), &f)
	if f.FatalRate != 1 || f.Outage == nil || time.Until(f.Outage.Until) < 59*time.Minute {
		t.Fatalf("faults %+v", f)
	}
	if a := postForm(t, ts.URL, PathV2, auth("action", "stat")); a.status != 503 {
		t.Fatalf("outage not in force: %d", a.status)
	}
	// Admin endpoints are never faulted.
	if a := adminDo(t, "GET", ts.URL+"/_sim/stats", ""); a.status != 200 {
		t.Fatalf("stats during outage: %d", a.status)
	}
	adminDo(t, "POST", ts.URL+"/_sim/faults", `{}`)

	var st Stats
	json.Unmarshal([]byte(adminDo(t, "GET", ts.URL+"/_sim/stats", "").body), &st)
	if st.Requests["v2.add"] != 2 || st.Requests["v2.stat"] != 0 || st.Faults["outage"] != 1 || st.Leads != 2 {
		t.Fatalf("stats %+v", st)
	}

	if a := adminDo(t, "POST", ts.URL+"/_sim/reset", ""); a.status != 200 {
		t.Fatalf("reset: %d", a.status)
	}
	if n := len(sim.Leads()); n != 0 {
		t.Fatalf("%d leads after reset", n)
	}
	if id := addV2(t, ts.URL, "title", "again"); id != 1 {
		t.Fatalf("id after reset %d, want 1", id)
	}
	if a := adminDo(t, "GET", ts.URL+"/nowhere", ""); a.status != 404 {
		t.Fatalf("unknown path: %d", a.status)
	}
}

// TestFaultsShowWhatIsInForce: GET /_sim/faults shows the faults in force
// and nothing else: after clearing them it is {}, and error_status appears
// (with its default) only while an error rate is set (issue 19.5: it still
// showed {"error_status":500} after the faults were cleared).
func TestFaultsShowWhatIsInForce(t *testing.T) {
	t.Parallel()
	_, ts := newTestSim(t, Config{})
	tests := []struct {
		name, set, want string
	}{
		{"cleared after errors", `{"error_rate":1,"error_status":503}`, `{}`},
		{"cleared after an outage", `{"outage":{"mode":"refuse","for":"1h"},"reject_marker":"#x"}`, `{}`},
		{"error rate with the default status", `{"error_rate":0.5}`, `{"error_rate":0.5,"error_status":500}`},
		{"a status without a rate is no fault", `{"error_status":503,"reject_marker":"#x"}`, `{"reject_marker":"#x"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adminDo(t, "POST", ts.URL+"/_sim/faults", tc.set)
			if tc.want == `{}` {
				adminDo(t, "POST", ts.URL+"/_sim/faults", `{}`)
			}
			var got bytes.Buffer
			if err := json.Compact(&got, []byte(adminDo(t, "GET", ts.URL+"/_sim/faults", "").body)); err != nil || got.String() != tc.want {
				t.Errorf("GET /_sim/faults = %s (%v), want %s", got.String(), err, tc.want)
			}
		})
	}
}
