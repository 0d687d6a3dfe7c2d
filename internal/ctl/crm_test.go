package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"leadrelay/config"
	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/lead"
)

func TestCRM(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, nil)
	var ids []int64
	for i := range 3 {
		id, err := e.crm.Add(ctx, crmclient.Lead{Lead: lead.Lead{Title: fmt.Sprint("Ann ", i), Email: fmt.Sprintf("ann%d@example.com", i), Company: "ACME"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	tests := []struct {
		name string
		args []string
		text []string
	}{
		{"stat", []string{"crm", "stat"}, []string{"LOGIN", "IN WORK", "PROCESSED", crmLogin}},
		{"info", []string{"crm", "info", fmt.Sprint(ids[1])}, []string{"ann1@example.com", "Ann 1", "ACME", "open"}},
		{"list", []string{"crm", "list"}, []string{"ID", "CREATED", "ann0@example.com", "ann2@example.com", "3 leads"}},
		{"list all", []string{"crm", "list", "--all"}, []string{"3 leads"}},
		{"list page 1", []string{"crm", "list", "--page", "1"}, []string{"0 leads"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := e.run(t, "", tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.text {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			out, _, err = e.run(t, "", append([]string{"--json"}, tc.args...)...)
			if err != nil || !json.Valid([]byte(out)) {
				t.Errorf("--json: %v\n%s", err, out)
			}
		})
	}
	out, _, _ := e.run(t, "", "--json", "crm", "list")
	if items := decodeJSON[[]crmclient.ListItem](t, out); len(items) != 3 {
		t.Errorf("json list has %d items", len(items))
	}
	out, _, _ = e.run(t, "", "--json", "crm", "info", fmt.Sprint(ids[0]))
	if info := decodeJSON[crmclient.LeadInfo](t, out); info.ID != ids[0] || info.Email != "ann0@example.com" {
		t.Errorf("json info = %+v", info)
	}

	wrong := *e
	wrong.cfg.CRM.APIKey = "wrong-key-wrong-key"
	_, _, err := wrong.run(t, "", "crm", "stat")
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "LEADRELAY_CRM_APIKEY") || strings.Contains(err.Error(), "wrong-key") {
		t.Errorf("wrong key: exit %d, %v", ExitCode(err), err)
	}
}

// setSimStatus sets a simulator lead's status through its admin API, as an
// operator processing it in the CRM would.
func setSimStatus(t *testing.T, crmURL string, id int64, status int) {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("%s/_sim/leads/%d/status", crmURL, id), "application/json", strings.NewReader(fmt.Sprintf(`{"status":%d}`, status)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set lead %d's status: HTTP %d", id, resp.StatusCode)
	}
}

// TestCRMStatCountsInWork: the CRM's stat counts, as the real SalesMan
// does, leads in work (status 1) and processed ones, not new leads
// (status 0): ctl names the columns for what they count and says where
// the new leads are (issue 19.5: 134 new leads in crm list, and crm stat
// read "OPEN 0").
func TestCRMStatCountsInWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var ids []int64
	for i := range 4 {
		id, err := e.crm.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "Ann", Email: fmt.Sprintf("stat%d@example.com", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	setSimStatus(t, e.cfg.CRM.URL, ids[1], int(crmclient.StatusInWork))
	setSimStatus(t, e.cfg.CRM.URL, ids[2], int(crmclient.StatusProcessed))

	out, _, err := e.run(t, "", "crm", "stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IN WORK", "PROCESSED", "new leads", "crm list"} {
		if !strings.Contains(out, want) {
			t.Errorf("crm stat lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(crmLogin) + `\s+1\s+1\s*$`).MatchString(out) {
		t.Errorf("crm stat does not show %s with 1 in work and 1 processed:\n%s", crmLogin, out)
	}

	out, _, err = e.run(t, "", "--json", "crm", "stat")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	found := false
	for _, r := range rows {
		if r["login"] == crmLogin {
			found = true
			if r["in_work"] != 1.0 || r["processed"] != 1.0 {
				t.Errorf("--json crm stat row = %v, want in_work 1, processed 1", r)
			}
		}
	}
	if !found {
		t.Errorf("--json crm stat has no row with login %s:\n%s", crmLogin, out)
	}
}

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

// TestCRMInfoNoEscapes: the table of ctl crm info holds no control
// characters, whatever the CRM sent, field names (uids) included.
func TestCRMInfoNoEscapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, err := e.crm.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "Evil\x1b]0;owned\x07", Email: "evil@example.com", Description: "hi\x1b[2J\x1b[1;1H\u009b0m", Company: "ACME\u202E"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := e.run(t, "", "crm", "info", fmt.Sprint(id))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "evil@example.com") {
		t.Fatalf("output lacks the lead:\n%s", out)
	}
	for _, r := range out {
		if r == '\n' || r == ' ' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202E' {
			t.Fatalf("output holds control character %U:\n%q", r, out)
		}
	}
}

// TestClipStripsControls is a low finding: ctl crm info wrote terminal
// escape sequences taken from CRM data to the operator's terminal.
func TestClipStripsControls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Ann Lee", "Ann Lee"},
		{"clear screen", "Ann\x1b[2J\x1b[H Lee", "Ann[2J[H Lee"},
		{"window title (OSC)", "\x1b]0;pwned\x07Ann", "]0;pwnedAnn"},
		{"C1 CSI", "Ann\u009b31mLee", "Ann31mLee"},
		{"bidi override", "invoice\u202Efdp.exe", "invoicefdp.exe"},
		{"newlines and tabs", "a\nb\tc\r\nd", "a b c d"},
		{"backspace", "rm\b\b\bok", "rmok"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"non-Latin text", "Андреев 李", "Андреев 李"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := clip(tc.in, 200); got != tc.want {
				t.Errorf("clip(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
