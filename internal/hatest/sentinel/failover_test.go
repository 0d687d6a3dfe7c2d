// Package sentinel tests LeadRelay on a Redis Sentinel group: a failover
// under load loses no acknowledged lead and duplicates none.
package sentinel

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"leadrelay/crmsim"
	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

// TestFailoverUnderLoad: a primary, a replica and 3 sentinels; intake
// (LEADRELAY_REDIS_WAIT_REPLICAS=1) and two workers as processes; 2,000
// leads at a steady rate; kill -9 of the primary halfway. The sentinels
// promote the replica, the old primary comes back as its replica (with one
// replica, WAIT has nothing to count until then), and every acknowledged lead
// reaches the CRM exactly once, without restarting any LeadRelay process,
// deliveries in flight over the failover (some CRM adds take 7s) included.
func TestFailoverUnderLoad(t *testing.T) {
	hatest.Short(t)
	tests := []struct {
		name     string
		leads    int
		rate     float64
		replicas int
	}{
		{"1 replica, 2000 leads at 100/s, kill -9 at 1000", 2000, 100, 1},
		// With two, the one left replicates the new primary at once, so WAIT
		// has a replica to count without waiting for the old primary.
		{"2 replicas, 1000 leads at 100/s, kill -9 at 500", 1000, 100, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin := hatest.Binary(t)
			g := redistest.StartSentinel(t, tc.replicas, 3)
			sim, crmURL := hatest.StartSim(t, 0)
			// One add in 100 takes 7s: longer than a lock renewal period (5s),
			// so some deliveries renew their lock across the failover.
			sim.SetFaults(crmsim.Faults{LateCommitRate: 0.01, LateCommitDelay: crmsim.Duration(7 * time.Second)})
			env := hatest.Env(g.URL(), crmURL,
				"LEADRELAY_REDIS_WAIT_REPLICAS=1", "LEADRELAY_REDIS_WAIT_TIMEOUT=500ms", "LEADRELAY_CONCURRENCY=10",
				"LEADRELAY_CRM_TIMEOUT=10s", "LEADRELAY_RECONCILE_AFTER=11s")
			in, workers := hatest.StartRelay(t, bin, env, 2)

			stop := make(chan struct{})
			stall := hatest.Gaps(sim, tc.leads, stop)
			pub := &hatest.Publisher{URL: in.URL, Rate: tc.rate}
			halfway, published := make(chan struct{}), make(chan time.Duration, 1)
			start := time.Now()
			go func() {
				pub.Run(context.Background(), tc.leads, func(i int) {
					if i == tc.leads/2 {
						close(halfway)
					}
				})
				published <- time.Since(start)
			}()
			<-halfway // Run always gets there: it gives up on a lead after 90s
			killedAt := time.Now()
			old := g.Primary
			old.Stop() // SIGKILL
			newPrimary := g.WaitFailover(old.Addr, 60*time.Second)
			failedOverAt := time.Now()
			// The host comes back (systemd would restart it) as a replica of
			// the new primary: with one replica, WAIT has none to count until then.
			if tc.replicas == 1 {
				old.RestartReplicaOf(newPrimary)
			}
			rejoinedAt := time.Now()
			var publishTime time.Duration
			select {
			case publishTime = <-published:
			case <-time.After(3 * time.Minute):
				t.Fatal("publishing did not finish within 3 minutes")
			}
			res := hatest.WaitDelivered(t, sim, pub.Acked(), 2*time.Minute)
			close(stop)
			n503, span503, refused := pub.Unavailable()
			// The longest gap between two acknowledgements: at a steady 100/s it
			// is the time intake could not acknowledge (client-side times).
			ackTimes := make([]time.Time, 0, tc.leads)
			for _, a := range pub.Acked() {
				ackTimes = append(ackTimes, a.At)
			}
			sort.Slice(ackTimes, func(i, j int) bool { return ackTimes[i].Before(ackTimes[j]) })
			var ackGap time.Duration
			for i := 1; i < len(ackTimes); i++ {
				ackGap = max(ackGap, ackTimes[i].Sub(ackTimes[i-1]))
			}
			var workerErrors, renewFailed, lockLost int
			for _, w := range workers {
				workerErrors += len(w.Lines(`"level":"error"`))
				renewFailed += len(w.Lines("lock renewal failed"))
				lockLost += len(w.Lines("lock lost during delivery"))
			}
			summary := fmt.Sprintf("ha sentinel failover: replicas=%d %s longest_ack_gap=%s crm_stall=%s 503s=%d 503_span=%s refused=%d failover=%s rejoin=%s publish=%s worker_error_lines=%d lock_renewals_failed=%d locks_lost=%d",
				tc.replicas, res, ackGap.Round(time.Millisecond), (<-stall).Round(time.Millisecond), n503, span503.Round(time.Millisecond), refused,
				failedOverAt.Sub(killedAt).Round(time.Millisecond), rejoinedAt.Sub(failedOverAt).Round(time.Millisecond),
				publishTime.Round(time.Millisecond), workerErrors, renewFailed, lockLost)
			hatest.Summary(t, summary)
			if p := pub.Problems(); p != "" {
				t.Errorf("publishing: %s", p)
			}
			if len(res.Lost) > 0 {
				t.Errorf("LOST %d acknowledged leads:%s", len(res.Lost), hatest.Explain(res.Lost, workers...))
			}
			if len(res.Duplicated) > 0 {
				t.Errorf("DUPLICATED %d leads in the CRM:%s", len(res.Duplicated), hatest.Explain(res.Duplicated, workers...))
			}
			if res.Acked != tc.leads {
				t.Errorf("%d of %d leads acknowledged", res.Acked, tc.leads)
			}
			for _, w := range workers {
				if lines := w.Lines(`"level":"error"`); len(lines) > 0 {
					t.Logf("%s logged errors (first 5):\n%s", w.Name, strings.Join(lines[:min(5, len(lines))], "\n"))
				}
			}
			if t.Failed() {
				t.Logf("intake log tail:\n%s", in.Tail())
			}
		})
	}
}
