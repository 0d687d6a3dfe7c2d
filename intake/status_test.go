package intake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"leadrelay/delivery"
	"leadrelay/status"
)

// TestStatusShowsSiteReason is the low finding "last_error shown to sites
// carries internal URLs and setting names": the status answer carries the
// reason's site text, never the operators' text with the CRM's address,
// LeadRelay's setting names or the CRM's own words.
func TestStatusShowsSiteReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		state delivery.State
		r     delivery.Reason
	}{
		{"paused", delivery.Retrying, delivery.Reason{Code: delivery.ConfigNotFound, HTTPStatus: 404, Detail: "http://crm.internal:8080/developer/v1/leads"}},
		{"rejected", delivery.Dead, delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида. SQL near 'x'"}},
		{"exhausted", delivery.Dead, delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503}.Exhausted()},
		{"delivered", delivery.Delivered, delivery.Reason{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := New(Options{Sites: map[string]string{"shop": shopKey}},
				statusPublisher{st: status.Status{ID: "ld_000000000000000000000000", State: tc.state, Reason: tc.r}}, nil)
			r := httptest.NewRequest(http.MethodGet, "/v1/leads/ld_000000000000000000000000", nil)
			r.Header.Set("Authorization", "Bearer "+shopKey)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var got statusBody
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if want := tc.r.Text(delivery.Sites); got.LastError != want || got.Status != string(tc.state) {
				t.Errorf("status %q, last_error = %q; want %q, %q", got.Status, got.LastError, tc.state, want)
			}
			for _, w := range []string{"LEADRELAY_", "http", "Ошибка", "SQL", "crm_code"} {
				if strings.Contains(rec.Body.String(), w) {
					t.Errorf("the answer holds %q: %s", w, rec.Body)
				}
			}
		})
	}
}

// threeRuns is a lead delivered at its third run, after an outage's
// postponements: every field of a site's timeline.
func threeRuns() status.Status {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	down := delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503, Detail: "internal"}
	return status.Status{ID: "ld_000000000000000000000001", Site: "shop", State: delivery.Delivered, CRMID: 7, Attempts: 3,
		ReceivedAt: t0, DeliveredAt: t0.Add(time.Hour), Runs: []delivery.Run{
			{At: t0, Worker: "w:1", End: delivery.RunRetry, Reason: down, Adds: 1},
			{At: t0.Add(time.Minute), LastAt: t0.Add(9 * time.Minute), Repeats: 8, End: delivery.RunPostponed, Reason: delivery.Reason{Code: delivery.CircuitOpen}},
			{At: t0.Add(10 * time.Minute), End: delivery.RunRetry, Reason: down, Adds: 1},
			{At: t0.Add(time.Hour), End: delivery.RunDelivered, CRMID: 7, Adds: 1},
		}}
}

// TestStatusTimelineForSites: a site reads its lead's runs as times,
// outcomes and reason codes with their site sentences; nothing internal
// (the worker, the CRM's status or words, durations) reaches it.
func TestStatusTimelineForSites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.h = New(Options{Sites: map[string]string{"shop": shopKey}}, statusPublisher{st: threeRuns()}, nil)
	req := httptest.NewRequest(http.MethodGet, "/v1/leads/ld_000000000000000000000001", nil)
	req.Header.Set("Authorization", "Bearer "+shopKey)
	rec := e.do(t, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var body struct {
		Timeline []map[string]any `json:"timeline"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := []struct{ outcome, code string }{
		{"retry", "crm_unreachable"}, {"postponed", "circuit_open"}, {"retry", "crm_unreachable"}, {"delivered", ""},
	}
	if len(body.Timeline) != len(want) {
		t.Fatalf("timeline = %v, want %d runs", body.Timeline, len(want))
	}
	for i, w := range want {
		r := body.Timeline[i]
		if r["outcome"] != w.outcome || (r["reason_code"] != nil || w.code != "") && r["reason_code"] != w.code {
			t.Errorf("run %d = %v, want %s %s", i, r, w.outcome, w.code)
		}
	}
	if body.Timeline[1]["repeats"] != 8.0 {
		t.Errorf("postponements = %v, want 8 repeats", body.Timeline[1])
	}
	for _, internal := range []string{"w:1", "503", "internal", "worker", "duration", "adds"} {
		if strings.Contains(rec.Body.String(), internal) {
			t.Errorf("a site reads %q: %s", internal, rec.Body)
		}
	}
}
