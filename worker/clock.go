package worker

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/rdb"
)

// One clock for the fleet (issue 17, point 2). Times that workers compare
// (an uncertain add's settle time against the reconcile wait, the sent
// time of an attempt, the circuit's open and probe times, the CRM
// look-up's date window) are written by one worker and read by another:
// with each on its own host's clock, a worker 5 minutes ahead looked
// uncertain adds up before the CRM could have committed them, and sent
// them again. So a worker keeps Redis's time: its clock is the host's
// (Options.Clock) plus the offset to Redis TIME, measured at Start and
// every clockSyncEvery. Locks, leases and the limiter use Redis's own
// expiries and TIME already.

// clockSyncEvery is how often the offset to Redis's clock is measured
// again (hosts' clocks drift, and NTP steps them).
const clockSyncEvery = time.Minute

// ClockSkewWarn is the difference between a worker host's clock and
// Redis's beyond which the worker logs it, once, with the offset. The
// worker behaves the same either side of it: it keeps Redis's time.
const ClockSkewWarn = time.Second

// fleetClock is Redis's time as a worker keeps it: the host's clock plus
// the last measured offset. The zero offset (before the first
// measurement, or when Redis cannot be reached) is the host's clock.
type fleetClock struct {
	local  func() time.Time
	offset atomic.Int64 // nanoseconds to add to local
	warned atomic.Bool
}

// Now is the fleet's time.
func (c *fleetClock) Now() time.Time { return c.local().Add(time.Duration(c.offset.Load())) }

// sync measures the offset to Redis's clock against the midpoint of the
// round trip (its error is at most half the round trip), and logs a
// difference beyond ClockSkewWarn once per process.
func (c *fleetClock) sync(ctx context.Context, store *rdb.Store, log *zap.Logger) error {
	t0 := c.local()
	rt, err := store.Time(ctx)
	if err != nil {
		return err
	}
	t1 := c.local()
	off := rt.Sub(t0.Add(t1.Sub(t0) / 2))
	c.offset.Store(int64(off))
	if (off > ClockSkewWarn || off < -ClockSkewWarn) && c.warned.CompareAndSwap(false, true) {
		log.Warn("this host's clock differs from Redis's; the worker keeps Redis's time (fix the host's NTP)",
			zap.Duration("offset", off), zap.Duration("bound", ClockSkewWarn))
	}
	return nil
}

// keepClock measures the offset now (bounded by bookkeepingTimeout), so
// the first runs keep Redis's time, then every clockSyncEvery in the
// background while ctx lives.
func (h *Handler) keepClock(ctx context.Context) {
	syncNow := func() {
		sctx, cancel := context.WithTimeout(ctx, bookkeepingTimeout)
		defer cancel()
		if err := h.clock.sync(sctx, h.store, h.log); err != nil && ctx.Err() == nil {
			h.log.Warn("Redis's clock not read; the host's clock is used until it is", zap.Error(err))
		}
	}
	syncNow()
	go every(ctx, clockSyncEvery, syncNow)
}
