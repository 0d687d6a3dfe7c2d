package app

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

func TestDeadHandler(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	store := deadletter.New(rds.Client())
	p := lead.NewPayload("shop", "k1", lead.Lead{Title: "Ann"}, time.Now())
	b, _ := json.Marshal(p)
	if err := store.Put(t.Context(), deadletter.Record{LeadID: p.ID, Site: "shop", Reason: delivery.Reason{Code: delivery.CRMRejected}, Payload: b}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		readOnly           bool
		remote             string
		user, pass         string
		want               int
		body               string
	}{
		{"list", "GET", deadPath + "?site=shop&since=1h", false, "127.0.0.1:1", "", "", 200, `"reason":"the CRM rejected the lead"`},
		{"bad since", "GET", deadPath + "?since=yesterday", false, "127.0.0.1:1", "", "", 400, "since must be"},
		{"no such site: empty list, not null", "GET", deadPath + "?site=nosuch", false, "127.0.0.1:1", "", "", 200, `"leads":[]`},
		{"unknown paging parameter", "GET", deadPath + "?page=2", false, "127.0.0.1:1", "", "", 400, `unknown parameter page`},
		{"requeue unknown: empty lists", "POST", deadPath + "/ld_none/requeue", false, "127.0.0.1:1", "", "", 404, `"enqueued":[]`},
		{"show", "GET", deadPath + "/" + p.ID, false, "127.0.0.1:1", "", "", 200, `"lead_id":"` + p.ID},
		{"unknown", "GET", deadPath + "/ld_nope", false, "127.0.0.1:1", "", "", 404, "no dead lead"},
		{"read-only refuses requeue", "POST", deadPath + "/" + p.ID + "/requeue", true, "127.0.0.1:1", "", "", 403, "read-only"},
		{"loopback without credentials", "GET", deadPath, false, "127.0.0.1:1", "-", "", 401, "unauthorized"},
		{"wrong password", "GET", deadPath, false, "203.0.113.9:1", "ops", "nope", 401, "unauthorized"},
		{"right password", "GET", deadPath, false, "203.0.113.9:1", "ops", "secret-secret", 200, `"total":1`},
		{"requeue", "POST", deadPath + "/" + p.ID + "/requeue", false, "127.0.0.1:1", "", "", 200, `"enqueued":["` + p.ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := OpsGuardOptions{Open: true, Hosts: []string{"example.com"}} // httptest's Host
			if tc.user != "" {
				o = OpsGuardOptions{User: "ops", Password: "secret-secret", Hosts: []string{"example.com"}}
			}
			h := OpsGuard(deadHandler(store, tc.readOnly), o, nil)
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.RemoteAddr = tc.remote
			if tc.user != "" && tc.user != "-" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("%s %s = %d %s, want %d containing %q", tc.method, tc.path, rec.Code, rec.Body, tc.want, tc.body)
			}
		})
	}
	if n, _ := store.Count(t.Context()); n != 0 {
		t.Errorf("requeued lead still in the store")
	}
}
