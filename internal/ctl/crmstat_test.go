package ctl

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

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
