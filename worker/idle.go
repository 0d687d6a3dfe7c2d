package worker

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/internal/rdb"
)

// A worker is busy or idle. Busy, it runs an asynq server that looks for
// a task every BusyPollInterval, as a LeadRelay worker always did. Once
// it has run nothing for idleAfter, it shuts that server down and is
// idle: it holds a subscription to the queue's wake channel, which the
// producer publishes to after each enqueue, and asks Redis once every
// PollInterval (one script, rdb.Store.NextWork) whether work it was not
// told about waits, sleeping until a known retry falls due. A wake, or
// work found, makes it busy again at once.
//
// Why a server per busy spell: asynq v0.26's processor sleeps
// TaskCheckInterval after an empty look (an uninterruptible time.Sleep in
// processor.exec), and neither asynq.Server nor asynq.Config offers a way
// to wake it or to change that interval once the server runs; a stopped
// server cannot start again. An idle asynq server also costs Redis about a
// command a second for its heartbeat alone (every 5 s, fixed), plus its
// forwarder, janitor and health check. So an idle worker runs none, and a
// fresh server, whose first look for a task comes at once, is the wake.
// What asynq's server does in the background is then done by the busy
// spells: the recoverer runs at each server's start (NextWork makes an
// idle worker busy when a dead worker's lease is due for recovery), the
// forwarder while busy (NextWork sleeps until the next retry is due) and
// the janitor every janitorEvery while busy (NextWork wakes for completed
// tasks past their retention, cleanupGrace after).
const (
	// DefaultPollInterval is how often an idle worker looks for work it was
	// not woken for: a lead enqueued by something that does not publish a
	// wake (a previous version's intake, asynqmon's "run"), a wake lost
	// with a connection. Six Redis commands a look.
	DefaultPollInterval = 5 * time.Second
	// DefaultBusyPollInterval is asynq's TaskCheckInterval while busy.
	DefaultBusyPollInterval = 50 * time.Millisecond
	// idleAfter is how long a busy worker runs no task before it goes idle.
	idleAfter = time.Second
	// leaseGrace: asynq's recoverer takes back a task whose lease expired
	// 30 s ago or more; an idle worker wakes a second after that.
	leaseGrace = 31 * time.Second
	// cleanupGrace lets completed tasks past their retention wait for the
	// janitor, so an idle fleet wakes to delete them in batches, at most
	// once per cleanupGrace.
	cleanupGrace = time.Hour
	// janitorEvery is asynq's JanitorInterval: within the shortest busy
	// spell, so even one lead's spell deletes expired completed tasks.
	janitorEvery = idleAfter / 2
	// wakeCheckEvery is how long the wake subscription may hear nothing
	// before it is pinged; one without an answer by the next check is
	// subscribed again.
	wakeCheckEvery = time.Minute
	// wakeRetry is the wait before subscribing again after the
	// subscription failed (wakeRefusedRetry: Redis refused it, e.g. an ACL
	// without the channel). Meanwhile the worker stays busy.
	wakeRetry        = time.Second
	wakeRefusedRetry = time.Minute
	// wakeFirstWait bounds Run's wait for its first subscription.
	wakeFirstWait = 5 * time.Second
	// handBackWait bounds the wait for the handlers of runs handed back
	// at shutdown: their contexts are cancelled, so only their
	// bookkeeping is left, each write bounded by bookkeepingTimeout.
	handBackWait = bookkeepingTimeout
)

// activity counts a worker's runs in flight and when one last began or
// ended, or a wake came.
type activity struct {
	mu      sync.Mutex
	running int
	last    time.Time
	ended   chan struct{} // closed when running falls to 0; nil before the first run
}

func (a *activity) begin() {
	a.mu.Lock()
	if a.running == 0 {
		a.ended = make(chan struct{})
	}
	a.running++
	a.last = time.Now()
	a.mu.Unlock()
}

func (a *activity) end() {
	a.mu.Lock()
	a.running--
	if a.running == 0 {
		close(a.ended)
	}
	a.last = time.Now()
	a.mu.Unlock()
}

func (a *activity) touch() {
	a.mu.Lock()
	a.last = time.Now()
	a.mu.Unlock()
}

// settle waits until no run is in flight, for at most d, and reports
// whether none is.
func (a *activity) settle(d time.Duration) bool {
	a.mu.Lock()
	running, ended := a.running, a.ended
	a.mu.Unlock()
	if running == 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ended:
		return true
	case <-t.C:
		return false
	}
}

// quietFor is how long no run has been in flight (0 while one is).
func (a *activity) quietFor() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running > 0 {
		return 0
	}
	return time.Since(a.last)
}

func (a *activity) inFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running
}

// tracked is h as the busy server runs it: each run counts as activity.
func (w *Worker) tracked(h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		w.act.begin()
		defer w.act.end()
		return h.ProcessTask(ctx, t)
	})
}

// idle waits, without an asynq server, until the queue has work for this
// worker (a wake, or NextWork says so) or ctx ends. It returns at once
// while the wake channel is unavailable: then the worker stays busy.
func (w *Worker) idle(ctx context.Context, wake <-chan struct{}) {
	w.log.Debug("worker idle")
	for w.wakeable.Load() && ctx.Err() == nil {
		due, known, err := w.store.NextWork(ctx, rdb.NextWorkArgs{Queue: w.o.Queue, Now: time.Now(),
			LeaseGrace: leaseGrace, CleanupGrace: cleanupGrace})
		w.idleLooks.Add(1)
		if err != nil && ctx.Err() == nil {
			w.log.Debug("idle look for work failed", zap.Error(err))
		}
		if err == nil && known && due == 0 {
			return
		}
		wait := w.o.PollInterval
		if err == nil && known {
			wait = min(wait, due)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// busy runs an asynq server until the worker has been quiet for idleAfter
// (and can be woken) or ctx ends, then shuts it down gracefully. Only a
// server that does not start is an error.
func (w *Worker) busy(ctx context.Context, wake <-chan struct{}) error {
	w.fleetLook(ctx, true)
	srv := asynq.NewServerFromRedisClient(w.rdb, w.cfg)
	if err := srv.Start(w.mux); err != nil {
		return err
	}
	w.busySpells.Add(1)
	w.log.Debug("worker busy")
	w.act.touch()
	// A spell lasts until asynq's forwarder ran once: a spell begun for a
	// retry falling due must not end before the retry is queued.
	linger := max(idleAfter, w.o.DelayedPollInterval+idleAfter/4)
	tick := time.NewTicker(idleAfter / 4)
	defer tick.Stop()
	fleet := time.NewTicker(fleetEvery)
	defer fleet.Stop()
	for {
		select {
		case <-ctx.Done():
			handedBack := w.act.inFlight() > 0
			srv.Shutdown()
			if handedBack {
				w.settleHandedBack()
				// Tasks it could not finish went back to the queue:
				// idle workers take them now, not at their next look.
				wctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = w.store.Wake(wctx, w.o.Queue)
				cancel()
			}
			return nil
		case <-wake:
			w.act.touch()
		case <-fleet.C:
			w.fleetLook(ctx, false)
		case <-tick.C:
			if w.wakeable.Load() && w.act.quietFor() >= linger {
				srv.Shutdown()
				return nil
			}
		}
	}
}

// settleHandedBack waits, up to handBackWait, for the handlers of the runs
// the busy server's Shutdown handed back. asynq hands a run still going at
// ShutdownTimeout back to the queue and returns without waiting for its
// handler, only cancelling its context; the handler then still releases
// the lead's lock and records the run. Returning first let the process
// close Redis under it: the release failed ("redis: client is closed"),
// the lock stayed until LockTTL, and the next worker postponed the lead
// that long (lock_busy). Waking the fleet before the release would send
// the lead to a worker that finds it still locked.
func (w *Worker) settleHandedBack() {
	w.settling.Add(1)
	if !w.act.settle(handBackWait) {
		w.log.Warn("runs handed back at shutdown still running; their leads' locks expire by themselves",
			zap.Int("runs", w.act.inFlight()), zap.Duration("waited", handBackWait))
	}
}

// listen keeps a subscription to the queue's wake channel while ctx
// lives and signals wake for each message and each (re)subscription
// after the first (messages may have been lost meanwhile); wakeable says
// whether the subscription stands. It returns once the first
// subscription stands or failed, or after wakeFirstWait; done is closed
// when the subscription is closed after ctx ended.
func (w *Worker) listen(ctx context.Context) (wake <-chan struct{}, done <-chan struct{}) {
	wakeCh, doneCh := make(chan struct{}, 1), make(chan struct{})
	first := make(chan struct{})
	var once sync.Once
	settled := func() { once.Do(func() { close(first) }) }
	go func() {
		defer close(doneCh)
		defer settled()
		for ctx.Err() == nil {
			ps := w.store.SubscribeWake(ctx, w.o.Queue)
			// A receive blocks in a read that ctx does not interrupt.
			unclose := context.AfterFunc(ctx, func() { _ = ps.Close() })
			err := w.receive(ctx, ps, wakeCh, settled)
			unclose()
			_ = ps.Close()
			w.wakeable.Store(false)
			settled()
			if ctx.Err() != nil {
				return
			}
			retry := wakeRetry
			var refused redis.Error
			if errors.As(err, &refused) {
				retry = wakeRefusedRetry
				w.log.Warn("Redis refused the wake channel: workers stay busy, polling as before (with ACLs, allow the channel: &leadrelay:*)",
					zap.String("channel", rdb.WakeChannel(w.o.Queue)), zap.Error(err))
			} else {
				w.log.Debug("wake subscription lost; the worker stays busy until it is back", zap.Error(err))
			}
			t := time.NewTimer(retry)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}()
	t := time.NewTimer(wakeFirstWait)
	defer t.Stop()
	select {
	case <-first:
	case <-ctx.Done():
	case <-t.C:
	}
	return wakeCh, doneCh
}

// receive reads ps until it fails: a subscription confirmed makes the
// worker wakeable and wakes it, a message wakes it. A quiet subscription
// is pinged every wakeCheckEvery; one that stays silent is given up.
func (w *Worker) receive(ctx context.Context, ps *redis.PubSub, wake chan<- struct{}, subscribed func()) error {
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, wakeCheckEvery)
		var ne net.Error
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &ne) && ne.Timeout() && !pinged:
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		default:
			return err
		}
		pinged = false
		switch msg.(type) {
		case *redis.Subscription:
			// Again after a lost connection: wakes may have been missed.
			if w.wakeable.Swap(true) || w.resubscribed.Swap(true) {
				signal()
			}
			subscribed()
		case *redis.Message:
			signal()
		}
	}
}
