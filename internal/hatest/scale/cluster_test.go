package scale

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/producer"
)

// BenchmarkClusterNodes shows where a lead's Redis work lands on a
// 3-primary cluster: leads are published and delivered (by asynq alone with
// a no-op handler, and by 2 LeadRelay worker processes into a CRM without
// latency), and each node's commands and CPU per lead are reported. asynq
// keeps a queue in one slot, so one node carries all of asynq's share; that
// share is what LEADRELAY_QUEUE_SHARDS would spread.
func BenchmarkClusterNodes(b *testing.B) {
	const n = 3000
	for _, variant := range []string{"asynq-noop", "leadrelay"} {
		b.Run(variant, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cl := redistest.StartCluster(b, 3)
				cc := cl.Client()
				sim, crmURL := hatest.StartSim(b, 0)
				if variant == "leadrelay" {
					env := hatest.Env(cl.URL(), crmURL, "LEADRELAY_CONCURRENCY=20", "LEADRELAY_LOG_LEVEL=warn")
					bin := hatest.Binary(b)
					for p := 0; p < 2; p++ {
						hatest.Start(b, bin, fmt.Sprintf("worker%d", p+1), env, "worker")
					}
				}
				insp := asynq.NewInspectorFromRedisClient(cc)
				if err := insp.PauseQueue(lead.DefaultQueue); err != nil {
					b.Fatal(err)
				}
				before := nodeStats(b, cl)
				preload(b, producer.New(cc, producer.Options{}, nil), n)
				queued := nodeStats(b, cl)
				b.StartTimer()
				start := time.Now()
				var srv *asynq.Server
				if variant == "asynq-noop" {
					srv = asynq.NewServerFromRedisClient(cc, asynq.Config{Concurrency: 40, Queues: map[string]int{lead.DefaultQueue: 1}, LogLevel: asynq.ErrorLevel})
					if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
						b.Fatal(err)
					}
				}
				if err := insp.UnpauseQueue(lead.DefaultQueue); err != nil {
					b.Fatal(err)
				}
				deadline := start.Add(3 * time.Minute)
				for {
					qi, err := insp.GetQueueInfo(lead.DefaultQueue)
					if err == nil && qi.Pending+qi.Active+qi.Retry == 0 {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("queue not drained in 3 minutes: %+v %v", qi, err)
					}
					time.Sleep(20 * time.Millisecond)
				}
				took := time.Since(start)
				b.StopTimer()
				if srv != nil {
					srv.Shutdown()
				}
				after := nodeStats(b, cl)
				var parts []string
				queueNode := keyNode(b, cc, "asynq:{"+lead.DefaultQueue+"}:pending")
				for addr, a := range after {
					d := a.cmds - before[addr].cmds
					role := ""
					if addr == queueNode {
						role = " (queue)"
					}
					parts = append(parts, fmt.Sprintf("%s%s: %.1f cmds/lead (in+out), %.1f%% cpu while delivering", addr, role, d/n, (a.cpu-queued[addr].cpu)/took.Seconds()*100))
				}
				b.ReportMetric(n/took.Seconds(), "leads/s")
				hatest.Summary(b, fmt.Sprintf("ha scale cluster %s: %d leads at %.0f/s; %s; crm=%d", variant, n, n/took.Seconds(), strings.Join(parts, "; "), len(sim.Leads())))
			}
		})
	}
}

// nodeStats reads each primary's counters.
func nodeStats(b *testing.B, cl *redistest.Cluster) map[string]stats {
	out := map[string]stats{}
	for _, s := range cl.Nodes {
		num := func(field string) float64 {
			v, _ := strconv.ParseFloat(strings.TrimSpace(s.Info(field)), 64)
			return v
		}
		out[s.Addr] = stats{cmds: num("total_commands_processed"), cpu: num("used_cpu_user") + num("used_cpu_sys"), mem: num("used_memory")}
	}
	return out
}

// keyNode is the address of the primary that holds key's slot.
func keyNode(b *testing.B, cc *redis.ClusterClient, key string) string {
	c, err := cc.MasterForKey(context.Background(), key)
	if err != nil {
		b.Fatal(err)
	}
	return c.Options().Addr
}
