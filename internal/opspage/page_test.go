package opspage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"leadrelay/audit"
	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestPage: what an operator reads on the page, for each state of the
// store: a CRM configuration problem with its fix, a dead lead with its
// reason and masked contact (also found by a search, which says its
// bound), and no re-run on a read-only page.
func TestPage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rc := redistest.Start(t).Client()
	dead := deadletter.New(rc)
	p := lead.NewPayload("shop", "k1", lead.Lead{Title: "Ann", Email: "ann@example.org", Phone: "+7 900 123-45-67"}, time.Now())
	b, err := lead.Codec{}.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Put(ctx, deadletter.Record{LeadID: p.ID, Site: "shop", Attempts: 1,
		Reason: delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "the CRM's own text about ann@example.org"}, Payload: b}); err != nil {
		t.Fatal(err)
	}
	problem := rdb.CircuitArgs{Now: time.Now(), Cooldown: time.Minute, TTL: time.Hour}
	if err := rdb.New(rc).CircuitProblem(ctx, problem, delivery.Reason{Code: delivery.ConfigAPIKey}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		readOnly   bool
		want, not  []string
	}{
		{"the CRM's configuration problem and its fix", "/", false,
			[]string{"open: deliveries are paused", "the CRM rejected the API key: check LEADRELAY_CRM_APIKEY"}, nil},
		{"a dead lead, its reason in words, its contact masked", "/", false,
			[]string{`<tr data-site="shop"><td>shop</td><td class="n" data-col="queued">0</td><td class="n" data-col="retrying">0</td><td class="n bad" data-col="dead">1</td>`, "the CRM rejected the lead (CRM code 1)", "A*** · a***@example.org · ***567", ">Re-run<"},
			[]string{"ann@example.org", "own text", "900 123"}},
		{"read-only: no re-run", "/", true, []string{"the CRM rejected the lead"}, []string{">Re-run<"}},
		{"a search by phone, without the country code", "/?q=" + url.QueryEscape("(900) 123-45-67"), false,
			[]string{`<td>shop</td><td>dead</td>`, "A*** · a***@example.org · ***567", "at most 100 of each"}, []string{"ann@example.org", "No lead found"}},
		{"a search that finds nothing", "/?q=" + url.QueryEscape("bob@example.org"), false,
			[]string{"No lead found", "at most 100 of each"}, []string{`<td>shop</td><td>dead</td>`}},
		{"the lead's page", "/leads/" + p.ID, false,
			[]string{`id="state" class="bad">dead`, "A*** · a***@example.org · ***567", ">Re-run<"}, []string{"ann@example.org"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := get(t, New(rc, dead, lead.Codec{}, Options{ReadOnly: tc.readOnly, SearchLimit: 100}), tc.path)
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q:\n%s", tc.path, w, body)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, n) {
					t.Errorf("GET %s shows %q", tc.path, n)
				}
			}
		})
	}
}

// get is page's answer to a GET of path; any status but 200 fails t.
func get(t *testing.T, page http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d:\n%s", path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestPageAudit: the CRM's box says the latest audit, and marks one that
// found a lead created twice.
func TestPageAudit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rc := redistest.Start(t).Client()
	page := New(rc, deadletter.New(rc), lead.Codec{}, Options{})
	if body, want := get(t, page, "/"), `<span id="audit" class="ok">no audit on record`; !strings.Contains(body, want) {
		t.Errorf("before any audit, the page lacks %q:\n%s", want, body)
	}
	rep := audit.Report{At: time.Now(), Window: "1h0m0s", Checked: 12, Read: 13, Duplicates: []audit.Find{{}}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.New(rc).AuditSave(ctx, b, time.Hour); err != nil {
		t.Fatal(err)
	}
	if body, want := get(t, page, "/"), `<span id="audit" class="bad">`+rep.Line(); !strings.Contains(body, want) {
		t.Errorf("after an audit that found a duplicate, the page lacks %q:\n%s", want, body)
	}
}

// TestRerunRefused: a re-run without the page's token, or on a read-only
// page, changes nothing: the lead stays dead.
func TestRerunRefused(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	dead := deadletter.New(rc)
	const id = "ld_0123456789abcdef01234567"
	if err := dead.Put(t.Context(), deadletter.Record{LeadID: id, Site: "shop", Reason: delivery.Reason{Code: delivery.CRMRejected}}); err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("t", 43)
	tests := []struct {
		name, cookie, form string
		readOnly           bool
	}{
		{"no token", "", "", false},
		{"a token without its cookie", "", token, false},
		{"another token", token, strings.Repeat("u", 43), false},
		{"read-only", token, token, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page := New(rc, dead, lead.Codec{}, Options{ReadOnly: tc.readOnly})
			req := httptest.NewRequest(http.MethodPost, "/leads/"+id+"/rerun", strings.NewReader(url.Values{csrfField: {tc.form}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: csrfCookie, Value: tc.cookie})
			}
			rec := httptest.NewRecorder()
			page.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden {
				t.Errorf("re-run = %d, want 403", rec.Code)
			}
			if _, err := dead.Get(t.Context(), id); err != nil {
				t.Errorf("the lead left the dead-letter store: %v", err)
			}
		})
	}
}
