package app

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/metrics"
	"leadrelay/notify"
	"leadrelay/worker"
)

// recorder is a Notifier that keeps what it is told.
type recorder struct {
	mu     sync.Mutex
	events []notify.Event
}

func (r *recorder) Notify(e notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

// TestNotifications: a lead stored as dead is notified with its site, id
// and reason; a configuration problem is notified when it starts and ends,
// not on every report.
func TestNotifications(t *testing.T) {
	t.Parallel()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	rec := &recorder{}
	d := deadLetters{store: deadletter.New(rdb), queue: "leads", notify: rec}
	p := lead.NewPayload("shop", "k1", lead.Lead{Title: "Ann"}, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rejected := delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}
	if err := d.Put(context.Background(), p, worker.Death{Reason: rejected, Outcome: delivery.Final, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	obs := &notifyingObserver{Observer: metrics.New(nil), n: rec}
	for _, problem := range []bool{false, true, true, true, false, false} {
		obs.CRMConfigProblem(problem)
	}
	outage := outageNotifier(rec) // the worker tells it once for the fleet
	outage(true, delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503})
	outage(false, delivery.Reason{})
	got := rec.kinds()
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
	if e := rec.events[0]; e.Site != "shop" || e.LeadID != p.ID || e.Reason != rejected ||
		strings.Contains(notify.Text(e), "Ошибка") {
		t.Errorf("dead-lead event = %+v: %s", e, notify.Text(e))
	}
	if open, closed := notify.Text(rec.events[3]), notify.Text(rec.events[4]); !strings.Contains(open, "crm_unreachable") ||
		!strings.Contains(open, "pause") || !strings.Contains(closed, "resume") {
		t.Errorf("outage notifications: %q, then %q; want its start with the failure, and its end", open, closed)
	}
}
