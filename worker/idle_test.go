package worker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/producer"
)

// startWorker runs a Worker of crm on rc with o until the test ends.
func startWorker(t *testing.T, rc redis.UniversalClient, c crm.Client, o Options) *Worker {
	t.Helper()
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = time.Second
	}
	o.BreakerThreshold = 1000
	return runWorkers(t, c, rc, o, 1)[0]
}

// waitFor waits until cond holds, for at most 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20s", what)
		}
	}
}

// TestIdleWorkerCost: an idle worker's own loops make at most 2 Redis
// commands a second, counting the commands its scripts run, as INFO
// commandstats counts them. The window is counted in the worker's looks
// for work, not measured on a clock: a look comes every PollInterval, so
// n looks stand for n × DefaultPollInterval of a worker at its defaults,
// and the budget is 2 commands a second of that. The test's worker looks
// every few milliseconds to get through many looks quickly. Only the
// look's own commands run meanwhile, and no asynq server starts.
func TestIdleWorkerCost(t *testing.T) {
	t.Parallel()
	const budgetPerSecond, window = 2, 40
	srv := redistest.Start(t)
	w := startWorker(t, srv.Client(), newFakeCRM(crmclient.V2), Options{PollInterval: 5 * time.Millisecond})
	stats := srv.Client()
	waitFor(t, "idle look", func() bool { return w.idleLooks.Load() >= 2 })
	before, err := redistest.CommandCalls(t.Context(), stats)
	if err != nil {
		t.Fatal(err)
	}
	looks0 := w.idleLooks.Load()
	waitFor(t, fmt.Sprintf("%d idle looks", window), func() bool { return w.idleLooks.Load() >= looks0+window })
	after, err := redistest.CommandCalls(t.Context(), stats)
	if err != nil {
		t.Fatal(err)
	}
	// A look in flight at either INFO may fall on either side of it.
	looks := w.idleLooks.Load() - looks0 - 1
	var total int64
	ran := map[string]int64{}
	for name, n := range after {
		if d := n - before[name]; d > 0 && name != "info" {
			ran[name] = d
			total += d
		}
	}
	seconds := float64(looks) * DefaultPollInterval.Seconds()
	t.Logf("%d commands in %d looks (%.0f s of a default worker): %.2f a second; %v", total, looks, seconds, float64(total)/seconds, ran)
	if float64(total) > budgetPerSecond*seconds {
		t.Errorf("an idle worker made %d Redis commands in %d looks, %.2f a second at the default PollInterval; want at most %d",
			total, looks, float64(total)/seconds, budgetPerSecond)
	}
	for _, name := range slices.Sorted(maps.Keys(ran)) {
		if !slices.Contains([]string{"evalsha", "llen", "zrange"}, name) {
			t.Errorf("an idle worker ran %s %d times: only the look for work (rdb.Store.NextWork) belongs to an idle worker", name, ran[name])
		}
	}
	if n := w.busySpells.Load(); n != 0 {
		t.Errorf("an idle worker started %d asynq servers", n)
	}
}

// TestLeadWakesIdleFleet: a lead published into an idle fleet whose
// workers would not look for work within the hour is delivered, once: the
// producer's wake makes the workers busy.
func TestLeadWakesIdleFleet(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	crm := newFakeCRM(crmclient.V2)
	fleet := []*Worker{
		startWorker(t, rc, crm, Options{PollInterval: time.Hour}),
		startWorker(t, rc, crm, Options{PollInterval: time.Hour}),
	}
	for _, w := range fleet {
		waitFor(t, "idle worker", func() bool { return w.idleLooks.Load() >= 1 && w.wakeable.Load() })
	}
	pub := producer.New(rc, producer.Options{}, nil)
	l := lead.Lead{Title: "Ann", Email: "ann@example.com", Company: "woken", Description: "call me"}
	if _, err := pub.Publish(t.Context(), "shop", l, "woken-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool { _, stored := crm.Counts(); return stored >= 1 })
	spells := fleet[0].busySpells.Load() + fleet[1].busySpells.Load()
	if spells == 0 {
		t.Error("the lead was delivered, but no worker was busy")
	}
	if _, stored := crm.Counts(); stored != 1 {
		t.Errorf("the CRM holds %d leads, want 1", stored)
	}
	for i, w := range fleet {
		if n := w.idleLooks.Load(); n > 2 {
			t.Errorf("worker %d looked for work %d times: the wake, not a look, was to find the lead", i, n)
		}
	}
}

// TestIdleWorkerWakesForRetry: a lead that failed is retried by a worker
// that went idle meanwhile, when the retry falls due: the look it made
// going idle said when, though its next look is an hour away.
func TestIdleWorkerWakesForRetry(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	crm := newFakeCRM(crmclient.V2)
	crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
		if n == 1 {
			return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
		}
		return true, nil
	})
	// The retry comes 2.4–3.6 s later: after the worker went idle.
	w := startWorker(t, rc, crm, Options{PollInterval: time.Hour, RetryInitial: 3 * time.Second})
	waitFor(t, "idle worker", func() bool { return w.idleLooks.Load() >= 1 })
	pub := producer.New(rc, producer.Options{}, nil)
	l := lead.Lead{Title: "Ann", Email: "ann@example.com", Company: "retried", Description: "call me"}
	if _, err := pub.Publish(t.Context(), "shop", l, "retried-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery of the retry", func() bool { _, stored := crm.Counts(); return stored == 1 })
	if adds, _ := crm.Counts(); adds != 2 {
		t.Errorf("%d adds, want 2 (a failure, then the retry)", adds)
	}
	if n := w.busySpells.Load(); n < 2 {
		t.Errorf("%d busy spells: the retry came before the worker went idle, which this test does not prove", n)
	}
}

// TestWakeRefusedStaysBusy: where Redis refuses the wake channel (an ACL
// written before it existed), a worker stays busy and polls as before: a
// lead enqueued with no wake at all is delivered.
func TestWakeRefusedStaysBusy(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	admin := srv.Client()
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "default", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	rc := srv.Client()
	crm := newFakeCRM(crmclient.V2)
	w := startWorker(t, rc, crm, Options{PollInterval: time.Hour})
	task, _ := newLeadTask(t)
	if _, err := asynq.NewClientFromRedisClient(rc).Enqueue(task, asynq.Queue(lead.DefaultQueue)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool { _, stored := crm.Counts(); return stored == 1 })
	if w.wakeable.Load() {
		t.Error("the worker holds a wake subscription Redis refuses")
	}
	if n := w.busySpells.Load(); n != 1 {
		t.Errorf("%d busy spells, want 1 that lasts", n)
	}
	if err := rdb.New(rc).Wake(t.Context(), lead.DefaultQueue); err == nil {
		t.Error("the ACL lets the wake through; this test proves nothing")
	}
}

// TestShutdownWaitsForHandedBackRuns: a run still going at ShutdownTimeout
// is handed back to the queue, and Run returns only once its handler has:
// asynq's Shutdown does not wait for it, but the handler, its context
// cancelled, still releases the lead's lock and records the run. A
// process that closed Redis as Run returned cut that off, and the lock
// held the lead for LockTTL (cmd/leadrelay's TestNoSecondPost took 17 s
// instead of 5). The handler here stays in its bookkeeping until the
// worker waits for it, so the test does not depend on who is faster.
func TestShutdownWaitsForHandedBackRuns(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	o := Options{Concurrency: 1, PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Millisecond, BreakerThreshold: 1000}
	w := New(rc, newHandler(t, newFakeCRM(crmclient.V2), rc, o, nil), o, nil)
	started, bookkeeping := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(bookkeeping) }) }
	t.Cleanup(finish)
	var ended atomic.Bool
	w.mux = asynq.NewServeMux()
	w.mux.Handle(lead.TaskType, w.tracked(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done() // asynq cancels it as it hands the task back
		<-bookkeeping
		ended.Store(true)
		return ctx.Err()
	})))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	task, p := newLeadTask(t)
	if _, err := asynq.NewClientFromRedisClient(rc).Enqueue(task, asynq.Queue(lead.DefaultQueue), asynq.TaskID(p.ID)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not begin within 20s")
	}
	cancel()
	waitFor(t, "Run's return or its wait for the handed-back run", func() bool {
		select {
		case err := <-ran:
			t.Fatalf("Run returned (%v) while the handler of the run it handed back was still running", err)
		default:
		}
		return w.settling.Load() > 0
	})
	finish()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s")
	}
	if !ended.Load() {
		t.Error("Run returned before the handler of the run it handed back")
	}
	info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(lead.DefaultQueue, p.ID)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Errorf("task after the shutdown: %v, %v; want it handed back, pending", info, err)
	}
}
