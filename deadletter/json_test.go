package deadletter

import (
	"encoding/json"
	"testing"
	"time"

	"leadrelay/delivery"
)

// TestRecordJSON: a record keeps its reason as data; the previous version,
// which reads "reason" and "text" as strings during a rolling upgrade,
// reads this version's records, and this version reads its records, their
// sentences as delivery.Legacy.
func TestRecordJSON(t *testing.T) {
	t.Parallel()
	r := Record{LeadID: "ld_1", Site: "shop", Reason: because("Ошибка добавления лида"), Attempts: 2,
		DeadAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Errors: []AttemptError{{At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Attempt: 2, Class: "dead", Reason: because("x")}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back.Reason != r.Reason || back.Errors[0].Reason != r.Errors[0].Reason {
		t.Fatalf("round trip: %+v, %v\n%s", back, err, b)
	}
	// The previous version's Record, as it decodes.
	var prev struct {
		Reason string `json:"reason"`
		Errors []struct {
			Text string `json:"text"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &prev); err != nil || prev.Reason != r.Reason.Text(delivery.Operators) ||
		prev.Errors[0].Text != r.Errors[0].Reason.Text(delivery.Operators) {
		t.Fatalf("the previous version reads %+v, %v", prev, err)
	}
	old := `{"lead_id":"ld_2","site":"shop","reason":"retries exhausted: CRM unreachable","attempts":3,` +
		`"errors":[{"at":"2026-03-01T12:00:00Z","attempt":3,"class":"retry","text":"crmclient: add: HTTP 503"}]}`
	var got Record
	if err := json.Unmarshal([]byte(old), &got); err != nil {
		t.Fatal(err)
	}
	if want := (delivery.Reason{Code: delivery.Legacy, Detail: "retries exhausted: CRM unreachable"}); got.Reason != want ||
		got.Errors[0].Reason != (delivery.Reason{Code: delivery.Legacy, Detail: "crmclient: add: HTTP 503"}) {
		t.Errorf("the previous version's record reads as %+v", got)
	}
}
