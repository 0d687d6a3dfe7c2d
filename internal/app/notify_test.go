package app

import (
	"strings"
	"testing"
	"time"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/metrics"
	"leadrelay/notify"
	"leadrelay/notify/notifytest"
	"leadrelay/worker"
)

// TestNotifications: a lead stored as dead is notified with its site, id
// and reason; a configuration problem is notified when it starts and ends,
// not on every report.
func TestNotifications(t *testing.T) {
	t.Parallel()
	rdb := redistest.MiniClient(t)
	rec := &notifytest.Recorder{}
	d := deadLetters{store: deadletter.New(rdb), queue: "leads", notify: rec}
	p := lead.NewPayload("shop", "k1", lead.Lead{Title: "Ann"}, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rejected := delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}
	if err := d.Put(t.Context(), p, worker.Death{Reason: rejected, Outcome: delivery.Final, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	obs := &notifyingObserver{Observer: metrics.New(nil), n: rec}
	for _, problem := range []bool{false, true, true, true, false, false} {
		obs.CRMConfigProblem(problem)
	}
	outage := outageNotifier(nil, rec) // the worker tells it once for the fleet
	outage(true, delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503})
	outage(false, delivery.Reason{})
	got, events := rec.Kinds(), rec.Events()
	want := []string{notify.LeadDead, notify.ConfigProblem, notify.ConfigResolved, notify.CircuitOpened, notify.CircuitClosed}
	if len(got) != len(want) {
		t.Fatalf("notified %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("notified %v, want %v", got, want)
		}
	}
	// Chat reads the code, never the CRM's own text.
	if e := events[0]; e.Site != "shop" || e.LeadID != p.ID || e.Reason != rejected ||
		strings.Contains(notify.Text(e), "Ошибка") {
		t.Errorf("dead-lead event = %+v: %s", e, notify.Text(e))
	}
	if open, closed := notify.Text(events[3]), notify.Text(events[4]); !strings.Contains(open, "crm_unreachable") ||
		!strings.Contains(open, "pause") || !strings.Contains(closed, "resume") {
		t.Errorf("outage notifications: %q, then %q; want its start with the failure, and its end", open, closed)
	}
}
