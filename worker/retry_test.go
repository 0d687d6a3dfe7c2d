package worker

import (
	"fmt"
	"testing"
	"time"

	"leadrelay/crmclient"
	"leadrelay/delivery"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	o := Options{RetryInitial: 10 * time.Second, RetryMultiplier: 2, RetryMaxDelay: time.Hour}
	within := func(base time.Duration) (time.Duration, time.Duration) {
		return time.Duration(float64(base) * (1 - jitter)), min(time.Duration(float64(base)*(1+jitter)), time.Hour)
	}
	tests := []struct {
		name     string
		n        int
		err      error
		min, max time.Duration
	}{
		{"first", 0, nil, 8 * time.Second, 12 * time.Second},
		{"second doubles", 1, nil, 16 * time.Second, 24 * time.Second},
		{"fifth", 4, nil, 128 * time.Second, 192 * time.Second},
		{"capped", 12, nil, 48 * time.Minute, time.Hour},
		{"huge n stays capped", 10000, nil, 48 * time.Minute, time.Hour},
		{"negative n is the first", -3, nil, 8 * time.Second, 12 * time.Second},
		{"retry-after above backoff", 0, &crmclient.StatusError{Action: "add", StatusCode: 503, RetryAfter: 2 * time.Minute}, 2 * time.Minute, 2 * time.Minute},
		{"retry-after below backoff", 4, &crmclient.StatusError{Action: "add", StatusCode: 503, RetryAfter: time.Second}, 128 * time.Second, 192 * time.Second},
		{"retry-after capped", 0, &crmclient.StatusError{Action: "add", StatusCode: 503, RetryAfter: 5 * time.Hour}, time.Hour, time.Hour},
		{"delay error above backoff", 0, &DelayError{Delay: 90 * time.Second}, 90 * time.Second, 90 * time.Second},
		{"wrapped delay error", 0, fmt.Errorf("x: %w", &DelayError{Delay: 90 * time.Second}), 90 * time.Second, 90 * time.Second},
		// Issue 8 case 8: a refusal waits what it asks, not the backoff.
		{"delay error below backoff", 1, &DelayError{Delay: 200 * time.Millisecond}, 200 * time.Millisecond, 200 * time.Millisecond},
		{"delay error tiny", 1, &DelayError{Delay: time.Millisecond}, minDelay, minDelay},
		{"ambiguous waits out the CRM timeout", 0, &crmclient.TransportError{Action: "add", Sent: true}, 31 * time.Second, 31 * time.Second},
		{"ambiguous later follows backoff", 5, &crmclient.TransportError{Action: "add", Sent: true}, 256 * time.Second, 384 * time.Second},
		{"delay error capped", 0, &DelayError{Delay: 48 * time.Hour}, time.Hour, time.Hour},
	}
	f := RetryDelay(o)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for range 50 { // jitter: many draws must all lie in bounds
				if d := f(tc.n, tc.err, nil); d < tc.min || d > tc.max {
					t.Fatalf("RetryDelay(%d, %v) = %v, want within [%v, %v]", tc.n, tc.err, d, tc.min, tc.max)
				}
			}
		})
	}
	t.Run("jitter spreads", func(t *testing.T) {
		t.Parallel()
		seen := map[time.Duration]bool{}
		lo, hi := within(20 * time.Second)
		for range 50 {
			d := f(1, nil, nil)
			if d < lo || d > hi {
				t.Fatalf("delay %v outside [%v, %v]", d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("only %d distinct delays in 50 draws: no jitter?", len(seen))
		}
	})
	t.Run("no jitter is the plain schedule", func(t *testing.T) {
		t.Parallel()
		oo := o.withDefaults()
		for n, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second} {
			if got := backoffDelay(oo, n, 0); got != want {
				t.Errorf("backoffDelay(%d) = %v, want %v", n, got, want)
			}
		}
	})
}

// TestRetryBudget sums the default schedule over MaxRetry retries: a lead
// keeps trying for about three days before it is dead-lettered.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	o := Options{}.withDefaults()
	f := RetryDelay(o)
	var plain, jittered time.Duration
	for n := range o.MaxRetry {
		plain += backoffDelay(o, n, 0)
		jittered += f(n, nil, nil)
	}
	day := 24 * time.Hour
	t.Logf("retry budget with defaults (MaxRetry %d): %.2f days without jitter, %.2f days with jitter",
		o.MaxRetry, plain.Hours()/24, jittered.Hours()/24)
	for name, b := range map[string]time.Duration{"plain": plain, "jittered": jittered} {
		if b < 5*day/2 || b > 4*day {
			t.Errorf("%s budget %v is not between 2.5 and 4 days", name, b)
		}
	}
}

// TestReconcileAfter: after an ambiguous add, neither the retry schedule
// nor the handler looks the lead up before ReconcileAfter has passed.
func TestReconcileAfter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ambiguous := &crmclient.TransportError{Action: "add", Sent: true}
	if d := RetryDelay(Options{ReconcileAfter: 2 * time.Minute})(0, ambiguous, nil); d != 2*time.Minute {
		t.Errorf("RetryDelay after an ambiguous add = %v, want 2m", d)
	}
	e := newEnv(t, crmclient.V2, func(o *Options) { o.ReconcileAfter = 2 * time.Minute })
	task, p := newLeadTask(t)
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return true, ambiguous })
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v", err)
	}
	e.crm.SetFail(nil)
	e.clock.Advance(e.o.CRMTimeout + reconcileSettle)
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Backpressure {
		t.Fatalf("run before ReconcileAfter = %v, want postponed", err)
	}
	if lists := e.crm.Lists(); lists != 0 {
		t.Fatalf("the CRM was asked %d times before ReconcileAfter", lists)
	}
	e.clock.Advance(2*time.Minute - e.o.CRMTimeout - reconcileSettle)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("run after ReconcileAfter = %v", err)
	}
	if m := e.marker(p.ID); m == nil || m.Via != "reconcile" {
		t.Fatalf("marker = %+v, want found by reconcile", m)
	}
	if adds, _ := e.crm.Counts(); adds != 1 {
		t.Errorf("adds = %d, want 1", adds)
	}
}
