// Package rollout tests how LeadRelay workers are replaced in production:
// one at a time under load (rolling restart), and next to workers of the
// previous version (mixed versions).
package rollout

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

// asynqPoll is asynq's default TaskCheckInterval: how long an idle worker
// may take to notice a task handed back by a stopping one.
const asynqPoll = time.Second

// TestRollingRestart: under steady publishing, each of 3 worker processes is
// replaced in turn with SIGTERM and a fresh start. No acknowledged lead is
// lost or duplicated; the longest wait of a lead is reported next to the
// bound it should stay under, shutdown timeout plus one poll.
func TestRollingRestart(t *testing.T) {
	hatest.Short(t)
	tests := []struct {
		name     string
		leads    int
		rate     float64
		latency  time.Duration
		shutdown time.Duration
	}{
		{"3 workers, 1000 leads at 50/s, CRM 20ms", 1000, 50, 20 * time.Millisecond, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin := hatest.Binary(t)
			rds := redistest.Start(t)
			sim, crmURL := hatest.StartSim(t, tc.latency)
			env := hatest.Env(rds.URL(), crmURL, "LEADRELAY_CONCURRENCY=10", "LEADRELAY_SHUTDOWN_TIMEOUT="+tc.shutdown.String())
			in, workers := hatest.StartRelay(t, bin, env, 3)
			pub := &hatest.Publisher{URL: in.URL, Rate: tc.rate, Prefix: "rolling"}
			done := make(chan struct{})
			go func() { defer close(done); pub.Run(context.Background(), tc.leads, nil) }()

			// Spread the three replacements over the publishing time.
			every := time.Duration(float64(tc.leads) / tc.rate / 4 * float64(time.Second))
			var stops []string
			for _, w := range workers {
				time.Sleep(every)
				took := w.Terminate(tc.shutdown + 10*time.Second)
				w.Restart()
				stops = append(stops, took.Round(time.Millisecond).String())
			}
			select {
			case <-done:
			case <-time.After(3 * time.Minute):
				t.Fatal("publishing did not finish within 3 minutes")
			}
			res := hatest.WaitDelivered(t, sim, pub.Acked(), time.Minute)
			bound := tc.shutdown + asynqPoll
			hatest.Summary(t, fmt.Sprintf("ha rolling restart: workers=3 %s bound=%s (shutdown %s + poll %s) stops=%s",
				res, bound, tc.shutdown, asynqPoll, strings.Join(stops, ",")))
			if p := pub.Problems(); p != "" {
				t.Errorf("publishing: %s", p)
			}
			if len(res.Lost) > 0 || len(res.Duplicated) > 0 || res.Acked != tc.leads {
				t.Errorf("exactly-once broken across restarts: %s%s", res, hatest.Explain(append(res.Lost, res.Duplicated...), workers...))
			}
		})
	}
}
