package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/crmsim"
	"leadrelay/internal/app"
	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/tools/bench/rawref"
)

// Delivery variants.
const (
	deliveryNoop  = "raw asynq no-op server"
	deliveryRaw   = "raw asynq server + crmclient.Add"
	deliveryRelay = "LeadRelay worker"
)

// shape is processes × concurrency.
type shape struct{ procs, conc int }

func (s shape) String() string { return strconv.Itoa(s.procs) + "×" + strconv.Itoa(s.conc) }

var deliveryShapes = []shape{{1, 10}, {1, 40}, {2, 10}}

// deliveryResult is one delivery point.
type deliveryResult struct {
	perSec             float64
	queuedB, finishedB float64 // Redis bytes per lead
	// trips and cmds are Redis's reads (requests on the wire: a pipeline
	// is one) and commands per delivered lead, from INFO stats.
	trips, cmds float64
	// redisCPU is redis-server's CPU seconds per delivered lead (INFO
	// cpu), and redisBusy its CPU seconds per second of the run.
	redisCPU, redisBusy float64
	// procCPU is the bench process's CPU seconds per delivered lead: the
	// variant's workers and the simulated CRM, which costs every variant
	// alike.
	procCPU float64
}

// delivery measures every variant at every shape against a zero-latency CRM.
func (b *bench) delivery(ctx context.Context) error {
	c, err := startCRM(crmsim.Faults{})
	if err != nil {
		return err
	}
	defer c.close()
	variants := []string{deliveryNoop, deliveryRaw, deliveryRelay}
	for _, s := range deliveryShapes {
		// Two rounds of half the leads, the second in reverse order, so a
		// change in the shared machine's load falls on every variant alike.
		sum := make([]deliveryResult, len(variants))
		for r := range 2 {
			for j := range variants {
				vi := j
				if r == 1 {
					vi = len(variants) - 1 - j
				}
				res, err := b.deliverOnce(ctx, c, variants[vi], s, b.sz.deliveryLeads/2, nil)
				if err != nil {
					return fmt.Errorf("%s %s: %w", variants[vi], s, err)
				}
				sum[vi].perSec += res.perSec / 2
				sum[vi].queuedB += res.queuedB / 2
				sum[vi].finishedB += res.finishedB / 2
				sum[vi].trips += res.trips / 2
				sum[vi].cmds += res.cmds / 2
				sum[vi].redisCPU += res.redisCPU / 2
				sum[vi].redisBusy += res.redisBusy / 2
				sum[vi].procCPU += res.procCPU / 2
			}
		}
		for vi, v := range variants {
			res := sum[vi]
			b.logf("deliver %-34s %s %8.0f/s  queued %5.0f B/lead  finished %5.0f B/lead  %4.1f round trips %4.1f commands/lead",
				v, s, res.perSec, res.queuedB, res.finishedB, res.trips, res.cmds)
			b.rep.addDelivery(v, s, res)
		}
	}
	return nil
}

// deliverOnce empties Redis, queues n leads the way the variant's producer
// does, delivers them with the variant at shape s, and measures the steady
// rate and the Redis bytes per queued and per finished lead. extra adds
// LeadRelay settings.
func (b *bench) deliverOnce(ctx context.Context, c *crm, variant string, s shape, n int, extra map[string]string) (deliveryResult, error) {
	var res deliveryResult
	if err := b.flush(ctx); err != nil {
		return res, err
	}
	base, err := b.settledMemory(ctx)
	if err != nil {
		return res, err
	}
	run := fmt.Sprintf("d%d", time.Now().UnixNano())
	if err := b.preload(ctx, variant == deliveryRelay, run, n); err != nil {
		return res, err
	}
	queued, err := b.settledMemory(ctx)
	if err != nil {
		return res, err
	}
	res.queuedB = (queued - base) / float64(n)

	var cnt *counter
	if variant == deliveryNoop {
		cnt = &counter{}
	} else {
		cnt = &c.counter
	}
	done := cnt.expect(n, false)
	before, err := redisLoad(ctx, b.rdb)
	if err != nil {
		return res, err
	}
	start, cpu := time.Now(), selfCPU()
	stop, err := b.startWorkers(ctx, c, variant, s, cnt, extra)
	if err != nil {
		return res, err
	}
	if err := awaitDelivered(ctx, done, cnt, n); err != nil {
		stop()
		return res, err
	}
	res.perSec = cnt.rate(s.procs * s.conc)
	res.procCPU = (selfCPU() - cpu).Seconds() / float64(n)
	after, err := redisLoad(ctx, b.rdb)
	if err != nil {
		stop()
		return res, err
	}
	res.trips = (after.reads - before.reads) / float64(n)
	res.cmds = (after.cmds - before.cmds) / float64(n)
	res.redisCPU = (after.cpu - before.cpu) / float64(n)
	res.redisBusy = (after.cpu - before.cpu) / time.Since(start).Seconds()
	err = b.drained(ctx)
	stop()
	if err != nil {
		return res, err
	}
	finished, err := b.settledMemory(ctx)
	if err != nil {
		return res, err
	}
	res.finishedB = (finished - base) / float64(n)
	return res, nil
}

// awaitDelivered waits until done is closed (cnt counted n leads), for
// at most a bound that grows with n.
func awaitDelivered(ctx context.Context, done <-chan struct{}, cnt *counter, n int) error {
	timeout := time.Duration(n)*50*time.Millisecond + 30*time.Second
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("only %d of %d leads delivered within %s", cnt.count(), n, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// preload queues n leads on a connection of its own, closed before the
// memory is read: through the producer (LeadRelay) or raw Enqueue of the
// same task.
func (b *bench) preload(ctx context.Context, relay bool, run string, n int) error {
	rdb := redis.NewClient(&redis.Options{Addr: b.addr})
	defer rdb.Close()
	var enqueue func(i int) error
	if relay {
		pub := producer.New(rdb, producer.Options{}, nil)
		defer pub.Close()
		enqueue = func(i int) error {
			_, err := pub.Publish(ctx, benchSite, benchLead(run, i), run+"-"+strconv.Itoa(i))
			return err
		}
	} else {
		cl := asynq.NewClientFromRedisClient(rdb)
		defer cl.Close()
		enqueue = func(i int) error {
			t, err := lead.NewTask(lead.NewPayload(benchSite, run+"-"+strconv.Itoa(i), benchLead(run, i), time.Now()))
			if err != nil {
				return err
			}
			_, err = cl.EnqueueContext(ctx, t, taskOptions()...)
			return err
		}
	}
	const workers = 8
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := enqueue(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// startWorkers starts s.procs servers of the variant, each with its own
// Redis pool, and returns what stops them all.
func (b *bench) startWorkers(ctx context.Context, c *crm, variant string, s shape, cnt *counter, extra map[string]string) (func(), error) {
	var stops []func()
	stopAll := func() {
		var wg sync.WaitGroup
		for _, f := range stops {
			wg.Add(1)
			go func() { defer wg.Done(); f() }()
		}
		wg.Wait()
	}
	for range s.procs {
		if variant == deliveryRelay {
			env := b.env(c, map[string]string{"LEADRELAY_CONCURRENCY": strconv.Itoa(s.conc)})
			for k, v := range extra {
				env[k] = v
			}
			r, err := startRelay(ctx, env, app.Roles{Worker: true})
			if err != nil {
				stopAll()
				return nil, err
			}
			stops = append(stops, r.stop)
			continue
		}
		stop, err := b.startRaw(c, variant == deliveryNoop, s.conc, cnt, 0)
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, stop)
	}
	return stopAll, nil
}

// startRaw starts one raw asynq server (rawref): a no-op handler that
// counts, or one that parses the payload and makes the same crmclient.Add
// as the worker. poll sets TaskCheckInterval (0: asynq's default).
func (b *bench) startRaw(c *crm, noop bool, conc int, cnt *counter, poll time.Duration) (func(), error) {
	h := asynq.HandlerFunc(func(context.Context, *asynq.Task) error { cnt.hit(""); return nil })
	if !noop {
		var err error
		if h, err = rawref.Handler(c.url); err != nil {
			return nil, err
		}
	}
	return rawref.Start(b.addr, conc, poll, h)
}

// drained waits (bounded) until the queue has nothing pending, active or
// waiting to retry: every delivery finished its bookkeeping.
func (b *bench) drained(ctx context.Context) error {
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		qi, err := insp.GetQueueInfo(lead.DefaultQueue)
		if err == nil && qi.Pending+qi.Active+qi.Retry+qi.Scheduled == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("queue not drained after 30s: %d pending, %d active, %d retry", qi.Pending, qi.Active, qi.Retry)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// settledMemory is dataMemory once the server has seen the connections
// closed just before go.
func (b *bench) settledMemory(ctx context.Context) (float64, error) {
	select {
	case <-time.After(200 * time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return dataMemory(ctx, b.rdb)
}
