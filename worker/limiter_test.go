package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	keys "leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/internal/testclock"
	"leadrelay/lead"
)

// refusal checks that err is a limiter refusal the worker treats as
// backpressure, and returns it. Safe in goroutines: it reports with Errorf.
func refusal(t *testing.T, err error) *DelayError {
	t.Helper()
	var de *DelayError
	if !errors.As(err, &de) {
		t.Errorf("Acquire = %v, want a *DelayError", err)
		return &DelayError{}
	}
	if IsFailure(err) || judge(err).out != delivery.Backpressure {
		t.Errorf("refusal %v: IsFailure = %v, class = %v; want no failure, backpressure", err, IsFailure(err), judge(err).out)
	}
	return de
}

func TestRedisLimiterDisabled(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	if l := NewRedisLimiter(srv.Client(), 0, 0, time.Minute); l != nil {
		t.Fatalf("NewRedisLimiter(0, 0) = %#v, want nil (no limit)", l)
	}
	e := newEnv(t, crmclient.V2, func(o *Options) { o.Limiter = NewRedisLimiter(srv.Client(), 0, 0, 0) })
	for range 20 {
		task, _ := newLeadTask(t)
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("ProcessTask = %v", err)
		}
	}
}

func TestRedisLimiterRate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const rate = 5 // burst 5, one token every 200ms
	// Two limiters on two clients: two worker processes.
	pair := func(t *testing.T) ([2]Limiter, *testclock.Clock) {
		srv := redistest.Start(t)
		clock := newTestClock()
		var ls [2]Limiter
		for i := range ls {
			ls[i] = NewRedisLimiter(srv.Client(), rate, 0, 0, WithLimiterClock(clock.Now), WithLimiterWait(0))
		}
		return ls, clock
	}
	t.Run("frozen clock admits one burst", func(t *testing.T) {
		t.Parallel()
		ls, _ := pair(t)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for _, l := range ls {
			wg.Go(func() {
				for range 25 {
					release, err := l.Acquire(ctx)
					if err == nil {
						admitted.Add(1)
						release()
						continue
					}
					if de := refusal(t, err); de.Delay <= 0 || de.Delay > 200*time.Millisecond {
						t.Errorf("refusal delay = %v, want the time to the next token, at most 200ms", de.Delay)
					}
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != rate {
			t.Errorf("admitted %d of 50 at one instant, want the burst %d", n, rate)
		}
	})
	t.Run("one second admits burst plus rate", func(t *testing.T) {
		t.Parallel()
		ls, clock := pair(t)
		admitted := 0
		for i := range 50 { // 50 tries, 20ms apart: one second
			if release, err := ls[i%2].Acquire(ctx); err == nil {
				admitted++
				release()
			} else {
				refusal(t, err)
			}
			clock.Advance(20 * time.Millisecond)
		}
		// The tries span 0..980ms: the burst, then a token at 200, 400,
		// 600, 800ms. Never more than burst + rate in one second.
		if admitted < 2*rate-1 || admitted > 2*rate {
			t.Errorf("admitted %d of 50 in 1s at %d/s, want %d (burst + rate, less the edge)", admitted, rate, 2*rate-1)
		}
	})
	t.Run("refusal delay is the next token", func(t *testing.T) {
		t.Parallel()
		ls, clock := pair(t)
		for range rate {
			if _, err := ls[0].Acquire(ctx); err != nil {
				t.Fatal(err)
			}
		}
		_, err := ls[1].Acquire(ctx)
		de := refusal(t, err)
		if de.Delay != 200*time.Millisecond {
			t.Fatalf("refusal delay = %v, want 200ms", de.Delay)
		}
		if d := RetryDelay(Options{RetryInitial: time.Millisecond})(0, err, nil); d != de.Delay {
			t.Errorf("RetryDelay = %v, want the refusal's %v", d, de.Delay)
		}
		clock.Advance(de.Delay)
		if _, err := ls[1].Acquire(ctx); err != nil {
			t.Errorf("Acquire after the suggested delay = %v", err)
		}
	})
}

func TestRedisLimiterConcurrency(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t.Run("never more than the cap", func(t *testing.T) {
		t.Parallel()
		const slots, workers, each = 3, 10, 5
		srv := redistest.Start(t)
		var (
			held, peak, admitted atomic.Int64
			wg                   sync.WaitGroup
		)
		deadline := time.Now().Add(30 * time.Second)
		for range workers {
			// Each acquirer is its own process: own client, own limiter.
			l := NewRedisLimiter(srv.Client(), 0, slots, 10*time.Second)
			wg.Go(func() {
				for n := 0; n < each && time.Now().Before(deadline); {
					release, err := l.Acquire(ctx)
					if err != nil {
						refusal(t, err)
						continue
					}
					h := held.Add(1)
					for p := peak.Load(); h > p && !peak.CompareAndSwap(p, h); p = peak.Load() {
					}
					time.Sleep(2 * time.Millisecond)
					held.Add(-1)
					release()
					admitted.Add(1)
					n++
				}
			})
		}
		wg.Wait()
		if p := peak.Load(); p > slots {
			t.Errorf("%d CRM requests held at once, cap %d", p, slots)
		}
		if n := admitted.Load(); n != workers*each {
			t.Errorf("admitted %d, want %d", n, workers*each)
		}
		if n := srv.Client().ZCard(ctx, keys.CRMInflightKey).Val(); n != 0 {
			t.Errorf("%d slots still taken after every release", n)
		}
	})
	t.Run("release and lease free slots", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		clock := newTestClock()
		l := NewRedisLimiter(srv.Client(), 0, 3, time.Minute, WithLimiterClock(clock.Now), WithLimiterWait(0))
		var releases []func()
		for range 3 {
			release, err := l.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			releases = append(releases, release)
		}
		_, err := l.Acquire(ctx)
		if de := refusal(t, err); de.Delay < slotDelayMin || de.Delay > slotDelayMin+slotDelaySpread {
			t.Errorf("full-cap delay = %v, want 250ms..1s", de.Delay)
		}
		releases[0]()
		releases[0]() // idempotent: must not free a second slot
		if _, err := l.Acquire(ctx); err != nil {
			t.Fatalf("Acquire after a release = %v", err)
		}
		if _, err := l.Acquire(ctx); err == nil {
			t.Fatal("a double release freed two slots")
		}
		// Nobody releases now, as if every holder was killed: the leases
		// run out and the slots come back.
		clock.Advance(time.Minute)
		for i := range 3 {
			if _, err := l.Acquire(ctx); err != nil {
				t.Fatalf("Acquire %d after the lease = %v", i, err)
			}
		}
		_, err = l.Acquire(ctx)
		refusal(t, err)
	})
	t.Run("a process's waiters share one poll", func(t *testing.T) {
		t.Parallel()
		// Twelve runs of one process waiting for a slot another process
		// holds look at Redis about as often as one run does. Each looked
		// on its own before: on the real CRM's 8 slots a 2×10 fleet made
		// 6 refused looks a delivered lead.
		looks := func(waiters int) int64 {
			srv := redistest.Start(t)
			holder := NewRedisLimiter(srv.Client(), 0, 1, time.Minute)
			if _, err := holder.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
			l := NewRedisLimiter(srv.Client(), 0, 1, time.Minute, WithLimiterWait(3*time.Second))
			before := scriptCalls(t, srv)
			var wg sync.WaitGroup
			for range waiters {
				wg.Go(func() {
					_, err := l.Acquire(ctx)
					refusal(t, err)
				})
			}
			wg.Wait()
			return scriptCalls(t, srv) - before - int64(waiters) // less each run's first look
		}
		one, twelve := looks(1), looks(12)
		t.Logf("looks again while waiting 3 s: one run %d, twelve runs %d", one, twelve)
		if one < 5 || twelve > 3*one {
			t.Errorf("looks again while waiting 3 s: one run %d, twelve runs %d; want twelve at most 3× one", one, twelve)
		}
	})
	t.Run("waits in process for a slot", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		l := NewRedisLimiter(srv.Client(), 0, 1, time.Minute, WithLimiterWait(10*time.Second))
		release, err := l.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(50*time.Millisecond, release)
		if _, err := l.Acquire(ctx); err != nil {
			t.Fatalf("Acquire while a slot frees = %v, want it to wait", err)
		}
		// A done context ends the wait with a refusal, not a failure.
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err = l.Acquire(cctx)
		refusal(t, err)
	})
}

func TestRedisLimiterRetryAfter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, nil)
	newLimiter := func() Limiter {
		return NewRedisLimiter(e.rdb, 0, 5, time.Minute, WithLimiterClock(e.clock.Now), WithLimiterWait(0))
	}
	e.o.Limiter = newLimiter()
	e.h = newHandler(t, e.crm, e.rdb, e.o, nil)
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		return false, &crmclient.StatusError{Action: "add", StatusCode: 429, RetryAfter: 30 * time.Second}
	})
	task, _ := newLeadTask(t)
	err := e.h.ProcessTask(ctx, task)
	if d := refusal(t, err); d.Delay != 30*time.Second {
		t.Fatalf("ProcessTask = %v, want backpressure for the Retry-After", err)
	}
	// Another process holds off too, for the rest of the Retry-After.
	other := newLimiter()
	e.clock.Advance(10 * time.Second)
	_, err = other.Acquire(ctx)
	if de := refusal(t, err); de.Delay != 20*time.Second {
		t.Errorf("other worker's refusal delay = %v, want 20s", de.Delay)
	}
	e.clock.Advance(20 * time.Second)
	if _, err := other.Acquire(ctx); err != nil {
		t.Errorf("Acquire after the Retry-After = %v", err)
	}
	if n := e.rdb.ZCard(ctx, keys.CRMInflightKey).Val(); n != 1 {
		t.Errorf("slots taken = %d, want 1 (only the unreleased one above)", n)
	}
}

// quota admits its first n requests and refuses the rest.
type quota struct{ n atomic.Int64 }

func (q *quota) Acquire(context.Context) (func(), error) {
	if q.n.Add(-1) < 0 {
		return nil, &DelayError{Delay: time.Second, Reason: delivery.Reason{Code: delivery.RateLimit}}
	}
	return func() {}, nil
}

// TestReconcileGoesThroughLimiter: the list calls of a reconcile are crm.Client
// requests and wait for the limiter like an add.
func TestReconcileGoesThroughLimiter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	q := &quota{}
	q.n.Store(1) // the first add only
	e := newEnv(t, crmclient.V2, func(o *Options) { o.Limiter = q })
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		return true, &crmclient.TransportError{Action: "add", Sent: true, Err: context.DeadlineExceeded}
	})
	task, p := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want ambiguous", err)
	}
	e.crm.SetFail(nil)
	e.clock.Advance(e.o.CRMTimeout + reconcileSettle)
	refusal(t, e.h.ProcessTask(ctx, task))
	lists := e.crm.Lists()
	if lists != 0 {
		t.Fatalf("the CRM was listed %d times past a refusing limiter", lists)
	}
	q.n.Store(1) // one list
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("reconcile run = %v", err)
	}
	if m := e.marker(p.ID); m == nil || m.Via != "reconcile" {
		t.Fatalf("marker = %+v, want reconciled", m)
	}
}

// concCRM wraps a CRM, makes each Add take a while and records the most
// Adds in flight at once (the CRM in memory itself serialises them).
type concCRM struct {
	crm.Client
	held, peak atomic.Int64
}

func (c *concCRM) Add(ctx context.Context, l crmclient.Lead) (int64, error) {
	h := c.held.Add(1)
	defer c.held.Add(-1)
	for p := c.peak.Load(); h > p && !c.peak.CompareAndSwap(p, h); p = c.peak.Load() {
	}
	time.Sleep(10 * time.Millisecond)
	return c.Client.Add(ctx, l)
}

// TestLimiterEndToEnd runs two Workers (real asynq servers), each with its
// own Redis client and limiter as two processes would have, under a cap of
// two CRM requests in flight: never more than two Adds at once, every lead
// delivered once.
func TestLimiterEndToEnd(t *testing.T) {
	t.Parallel()
	const leads, slots = 24, 2
	srv := redistest.Start(t)
	fake := newFakeCRM(crmclient.V2)
	cc := &concCRM{Client: fake}
	o := Options{
		Concurrency: 4, RetryInitial: 10 * time.Millisecond, RetryMaxDelay: 50 * time.Millisecond,
		CRMTimeout: time.Second, BreakerThreshold: 1000, ShutdownTimeout: 5 * time.Second,
		PollInterval: 50 * time.Millisecond,
	}
	for range 2 {
		rdb := srv.Client()
		wo := o
		wo.Limiter = NewRedisLimiter(rdb, 0, slots, o.CRMTimeout+5*time.Second)
		runWorkers(t, cc, rdb, wo, 1)
	}

	rdb := srv.Client()
	client := asynq.NewClientFromRedisClient(rdb)
	ps := make([]lead.Payload, leads)
	for i := range ps {
		var task *asynq.Task
		task, ps[i] = newLeadTask(t)
		if _, err := client.Enqueue(task, asynq.Queue(lead.DefaultQueue), asynq.MaxRetry(100)); err != nil {
			t.Fatal(err)
		}
	}
	waitDelivered(t, rdb, ps)
	if p := cc.peak.Load(); p > slots {
		t.Errorf("%d Adds in flight at once, cap %d", p, slots)
	}
	if adds, stored := fake.Counts(); adds != leads || stored != leads {
		t.Errorf("adds = %d, stored = %d, want %d each", adds, stored, leads)
	}
	t.Logf("peak Adds in flight: %d (cap %d)", cc.peak.Load(), slots)
}

// BenchmarkRedisLimiter measures one Acquire and its release on a real
// Redis: one script round trip plus a ZREM when a cap is set.
func BenchmarkRedisLimiter(b *testing.B) {
	ctx := b.Context()
	for _, bc := range []struct {
		name  string
		rate  float64
		slots int
	}{
		{"rate", 1e9, 0},
		{"cap", 0, 1000},
		{"rate+cap", 1e9, 1000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := redistest.Start(b)
			l := NewRedisLimiter(srv.Client(), bc.rate, bc.slots, time.Minute, WithLimiterWait(0))
			b.ReportAllocs()
			for b.Loop() {
				release, err := l.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}

// scriptCalls is how many scripts (EVALSHA and EVAL) srv ran so far; the
// connection that asks adds no script.
func scriptCalls(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	calls, err := redistest.CommandCalls(t.Context(), srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return calls["evalsha"] + calls["eval"]
}
