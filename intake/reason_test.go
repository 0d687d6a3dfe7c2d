package intake

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"leadrelay/delivery"
	"leadrelay/status"
)

// statusPublisher answers every status read with st.
type statusPublisher struct {
	Publisher
	st status.Status
}

func (p statusPublisher) Status(context.Context, string, string) (status.Status, error) {
	return p.st, nil
}

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
