// Package scale measures how delivery throughput grows with worker
// processes, and what each lead costs Redis, for docs/capacity.md:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/hatest/scale
//
// It is a benchmark, not a test: it asserts nothing about speed.
package scale

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/producer"
)

// BenchmarkWorkerProcesses drains a preloaded queue with 1, 2 and 4 worker
// processes (concurrency 10 each) into a CRM that answers after 50ms, so
// one process is bound at 10/0.05s = 200 leads/s. It reports leads/s, the
// ratio to linear scaling, and Redis's commands, CPU and memory per lead.
func BenchmarkWorkerProcesses(b *testing.B) {
	const latency, conc, perProc = 50 * time.Millisecond, 10, 1000
	var one float64
	bin := hatest.Binary(b)
	for _, procs := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			var rate float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				rds := redistest.Start(b)
				sim, crmURL := hatest.StartSim(b, latency)
				env := hatest.Env(rds.URL(), crmURL, "LEADRELAY_CONCURRENCY="+strconv.Itoa(conc), "LEADRELAY_LOG_LEVEL=warn")
				for p := 0; p < procs; p++ {
					hatest.Start(b, bin, fmt.Sprintf("worker%d", p+1), env, "worker")
				}
				rdb := rds.Client()
				insp := asynq.NewInspectorFromRedisClient(rdb)
				if err := insp.PauseQueue(lead.DefaultQueue); err != nil {
					b.Fatal(err)
				}
				n := perProc * procs
				before, cmds0 := redisStats(b, rds), commandStats(b, rdb)
				preload(b, producer.New(rdb, producer.Options{}, nil), n)
				queued := redisStats(b, rds)
				b.StartTimer()
				start, cpu0 := time.Now(), hostCPU(b)
				if err := insp.UnpauseQueue(lead.DefaultQueue); err != nil {
					b.Fatal(err)
				}
				deadline := start.Add(3 * time.Minute)
				for len(sim.Leads()) < n {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d leads delivered in 3 minutes", len(sim.Leads()), n)
					}
					time.Sleep(10 * time.Millisecond)
				}
				took := time.Since(start)
				cpu1 := hostCPU(b)
				b.StopTimer()
				after := redisStats(b, rds)
				b.Logf("procs=%d Redis commands per lead, in and out: %s", procs, perLead(cmds0, commandStats(b, rdb), n))
				// What stays after asynq drops the completed tasks (LEADRELAY_DEDUP_TTL,
				// 24h): the delivered markers and owner records (LEADRELAY_DELIVERED_TTL, 30 days).
				if _, err := insp.DeleteAllCompletedTasks(lead.DefaultQueue); err != nil {
					b.Fatal(err)
				}
				kept := redisStats(b, rds)
				rate = float64(n) / took.Seconds()
				fn := float64(n)
				b.ReportMetric(rate, "leads/s")
				b.ReportMetric((queued.cmds-before.cmds)/fn, "cmds/lead-in")
				b.ReportMetric((after.cmds-queued.cmds)/fn, "cmds/lead-out")
				b.ReportMetric((queued.mem-before.mem)/fn, "B/queued-lead")
				b.ReportMetric((after.mem-before.mem)/fn, "B/done-lead")
				b.ReportMetric((kept.mem-before.mem)/fn, "B/lead-after-24h")
				b.ReportMetric((after.cpu-queued.cpu)/took.Seconds()*100, "redis-cpu-%")
				b.ReportMetric(100*(1-(cpu1.idle-cpu0.idle)/(cpu1.total-cpu0.total)), "host-busy-%")
				if procs == 1 {
					one = rate
				} else if one > 0 {
					b.ReportMetric(rate/(one*float64(procs)), "x-linear")
				}
				if len(sim.Leads()) != n {
					b.Errorf("CRM holds %d leads, want %d", len(sim.Leads()), n)
				}
			}
			hatest.Summary(b, fmt.Sprintf("ha scale: procs=%d concurrency=%d crm_latency=%s leads/s=%.0f bound=%.0f", procs, conc, latency, rate, float64(procs*conc)/latency.Seconds()))
		})
	}
}

// preload publishes n leads with 32 publishers at once.
func preload(b *testing.B, pub *producer.Publisher, n int) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				_, err := pub.Publish(context.Background(), "shop", lead.Lead{Title: "Scale " + strconv.Itoa(i), Email: fmt.Sprintf("scale-%06d@example.com", i)}, "")
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// commandStats returns INFO commandstats as calls per command.
func commandStats(b *testing.B, rdb *redis.Client) map[string]int64 {
	calls, err := redistest.CommandCalls(context.Background(), rdb)
	if err != nil {
		b.Fatal(err)
	}
	return calls
}

// perLead formats the commands called between two commandStats per lead,
// most frequent first.
func perLead(before, after map[string]int64, n int) string {
	type kv struct {
		name string
		v    float64
	}
	var list []kv
	for k, v := range after {
		if d := float64(v-before[k]) / float64(n); d >= 0.05 {
			list = append(list, kv{k, d})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v })
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = fmt.Sprintf("%s=%.2f", e.name, e.v)
	}
	return strings.Join(parts, " ")
}

// cpuTimes are the host's CPU counters (/proc/stat), in ticks.
type cpuTimes struct{ idle, total float64 }

func hostCPU(b *testing.B) cpuTimes {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{total: 1}
	}
	f := strings.Fields(strings.SplitN(string(raw), "\n", 2)[0])[1:]
	var c cpuTimes
	for i, v := range f {
		n, _ := strconv.ParseFloat(v, 64)
		c.total += n
		if i == 3 || i == 4 { // idle, iowait
			c.idle += n
		}
	}
	return c
}

// stats are Redis counters at one moment.
type stats struct{ cmds, cpu, mem float64 }

func redisStats(b *testing.B, s *redistest.Server) stats {
	b.Helper()
	num := func(field string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSpace(s.Info(field)), 64)
		if err != nil {
			b.Fatalf("INFO %s: %v", field, err)
		}
		return v
	}
	// INFO itself is one command; a few of them do not matter per lead.
	return stats{
		cmds: num("total_commands_processed"),
		cpu:  num("used_cpu_user") + num("used_cpu_sys"),
		mem:  num("used_memory"),
	}
}
