package intake

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"leadrelay/producer"
)

// TestSiteReason is the low finding "last_error shown to sites carries
// internal URLs and setting names": whatever the worker wrote, a site reads
// one short stable sentence.
func TestSiteReason(t *testing.T) {
	t.Parallel()
	const (
		retrying = producer.StateRetrying
		dead     = producer.StateDead
	)
	tests := []struct {
		name, state, raw, want string
	}{
		{"nothing", retrying, "", ""},
		{"delivered", producer.StateDelivered, "crmclient: add: HTTP 502 Bad Gateway", ""},
		{"connection refused", retrying, "crmclient: add: transport error (request not sent): Post \"http://10.0.0.5:8080/developer/v2/lead\": dial tcp 10.0.0.5:8080: connect: connection refused", ReasonCRMUnreachable},
		{"gateway", retrying, `crmclient: add: HTTP 502 Bad Gateway: "<html>nginx at crm.internal.example</html>"`, ReasonCRMUnreachable},
		{"short sentence", retrying, "The CRM did not answer in time.", ReasonCRMUnreachable},
		{"config hint", retrying, "postponed 30s: CRM configuration problem: the CRM rejected the API key (code 400): check LEADRELAY_CRM_APIKEY: crmclient: add: CRM error 400: Не верный API key", ReasonPaused},
		{"config sentence", retrying, "CRM settings are wrong: check LEADRELAY_CRM_URL", ReasonPaused},
		{"circuit", retrying, "postponed 30s: CRM circuit open", ReasonCRMBusy},
		{"rate limit", retrying, "postponed 50ms: CRM rate limit", ReasonCRMBusy},
		{"slow down", retrying, `postponed 3s: CRM asks to slow down: crmclient: add: HTTP 429 Too Many Requests`, ReasonCRMBusy},
		{"lock", retrying, "postponed 5s: another worker is delivering this lead", ReasonCRMBusy},
		{"settle", retrying, "postponed 2m0s: waiting for the earlier request to settle before reconciling", ReasonChecking},
		{"marker", retrying, "delivered as CRM lead 940 but the delivered marker was not recorded: redis: i/o timeout", ReasonChecking},
		{"html answer", retrying, `crmclient: add: unexpected answer (HTTP 200, text/html): not JSON: "<b>Fatal error</b> in /var/www/crm/developer/v1/leads.php"`, ReasonCRMUnexpected},
		{"redis", retrying, "redis: begin: LOADING Redis is loading the dataset in memory", ReasonRelay},
		{"unknown", retrying, "something new at https://crm.internal/x?apikey=REDACTED", ReasonRetrying},
		{"rejected", dead, "dead: crmclient: add: CRM error 1: Ошибка добавления лида. SQL near 'x' apikey=REDACTED", ReasonRejected},
		{"rejected sentence", dead, "The CRM rejected the lead: invalid e-mail.", ReasonRejected},
		{"exhausted", dead, "retries exhausted: crmclient: add: HTTP 503 Service Unavailable", ReasonGaveUp},
		{"dead without a word", dead, "crmclient: add: HTTP 503 Service Unavailable", ReasonGaveUp},
	}
	allowed := map[string]bool{"": true}
	for _, r := range []string{ReasonCRMUnreachable, ReasonCRMBusy, ReasonCRMUnexpected, ReasonPaused, ReasonChecking, ReasonRelay, ReasonRetrying, ReasonRejected, ReasonGaveUp} {
		allowed[r] = true
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := siteReason(tc.state, tc.raw)
			if got != tc.want {
				t.Errorf("siteReason(%s, %q) = %q, want %q", tc.state, tc.raw, got, tc.want)
			}
			if !allowed[got] || strings.Contains(got, "LEADRELAY_") || strings.Contains(got, "http") {
				t.Errorf("siteReason leaks: %q", got)
			}
		})
	}
}

// statusPublisher answers every status read with st.
type statusPublisher struct {
	Publisher
	st producer.Status
}

func (p statusPublisher) Status(context.Context, string, string) (producer.Status, error) {
	return p.st, nil
}

// TestStatusShowsSiteReason: the status answer carries the site reason, not
// the worker's text with the CRM's address and LeadRelay's setting names.
func TestStatusShowsSiteReason(t *testing.T) {
	t.Parallel()
	raw := `postponed 30s: CRM configuration problem: the CRM answered HTTP 404: wrong LEADRELAY_CRM_URL: crmclient: add: HTTP 404 Not Found: "http://crm.internal:8080/developer/v1/leads"`
	h := New(Options{Sites: map[string]string{"shop": shopKey}},
		statusPublisher{st: producer.Status{ID: "ld_000000000000000000000000", State: producer.StateRetrying, LastError: raw}}, nil)
	r := httptest.NewRequest(http.MethodGet, "/v1/leads/ld_000000000000000000000000", nil)
	r.Header.Set("Authorization", "Bearer "+shopKey)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var got statusBody
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if got.LastError != ReasonPaused {
		t.Errorf("last_error = %q, want %q", got.LastError, ReasonPaused)
	}
}
