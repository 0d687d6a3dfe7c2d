package producer

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestPublishWakesWorkers: every lead Publish enqueues is followed by a
// wake on its queue's channel sent after it; a burst shares wakes (at
// most one per wakeGap).
func TestPublishWakesWorkers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		leads int
	}{
		{"one lead", 1},
		{"a burst of 50 at once", 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := redistest.Start(t).Client()
			ps := rc.Subscribe(t.Context(), rdb.WakeChannel(lead.DefaultQueue))
			t.Cleanup(func() { _ = ps.Close() })
			if _, err := ps.ReceiveTimeout(t.Context(), 5*time.Second); err != nil {
				t.Fatalf("no subscription: %v", err)
			}
			p, _ := newPublisher(t, rc, Options{})
			var wg sync.WaitGroup
			for i := range tc.leads {
				wg.Go(func() {
					l := lead.Lead{Title: "Ann", Email: fmt.Sprintf("ann%d@example.com", i)}
					if _, err := p.Publish(t.Context(), "shop", l, ""); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			// Every poke is followed by a wake sent after it: once the
			// waker stops, the wakes it sent are on the subscription.
			for deadline := time.Now().Add(10 * time.Second); p.wake.running.Load(); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the waker still runs 10s after the last lead")
				}
			}
			wakes := 0
			for {
				msg, err := ps.ReceiveTimeout(t.Context(), 200*time.Millisecond)
				if _, ok := msg.(*redis.Message); err != nil || !ok {
					break
				}
				wakes++
			}
			if wakes < 1 || wakes > tc.leads {
				t.Errorf("%d wakes for %d leads, want 1 to %d", wakes, tc.leads, tc.leads)
			}
			t.Logf("%d leads, %d wakes", tc.leads, wakes)
		})
	}
}
