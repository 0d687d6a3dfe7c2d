package producer

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/rdb"
)

// wakeGap is the least time between two wakes of one Publisher. A wake
// makes every idle worker busy for a second at least, so a lead enqueued
// within wakeGap of the last wake finds the fleet busy; its own wake,
// sent at the end of the gap, covers a worker that went idle meanwhile.
// Under load that is at most 1/wakeGap PUBLISH commands a second per
// intake process, and none while no lead comes.
const wakeGap = 20 * time.Millisecond

// wakeTimeout bounds one PUBLISH.
const wakeTimeout = time.Second

// waker wakes the idle workers of a queue after enqueues (rdb.Store.Wake),
// in the background and coalesced: at most one PUBLISH in flight, at most
// one per wakeGap. A wake is best effort: a worker that misses one finds
// the lead at its next look (worker.Options.PollInterval).
type waker struct {
	store *rdb.Store
	queue string
	log   *zap.Logger
	// running: a goroutine is sending; again: a lead came since it last sent.
	running, again atomic.Bool
	failed         atomic.Bool // the last wake failed (logged once until one works)
}

// poke asks for a wake; it never blocks.
func (w *waker) poke() {
	w.again.Store(true)
	if w.running.CompareAndSwap(false, true) {
		go w.run()
	}
}

// run sends wakes while leads keep coming, then ends.
func (w *waker) run() {
	for {
		for w.again.Swap(false) {
			w.send()
			time.Sleep(wakeGap)
		}
		w.running.Store(false)
		// A poke between the last Swap and the Store above found running
		// set and started nothing: take it over, unless another did.
		if !w.again.Load() || !w.running.CompareAndSwap(false, true) {
			return
		}
	}
}

func (w *waker) send() {
	ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
	defer cancel()
	err := w.store.Wake(ctx, w.queue)
	switch {
	case err != nil && !w.failed.Swap(true):
		w.log.Warn("idle workers not woken: they find new leads at their next look (LEADRELAY_POLL_INTERVAL)", zap.Error(err))
	case err == nil && w.failed.Swap(false):
		w.log.Info("idle workers woken again")
	}
}
