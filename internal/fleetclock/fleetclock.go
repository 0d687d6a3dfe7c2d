// Package fleetclock is the one clock of a LeadRelay fleet: Redis's TIME
// as each process keeps it (issue 17, point 2). Times one process writes
// and another compares (an uncertain add's settle time against the
// reconcile wait, the time intake received a lead against a rollback, the
// look-up's date window, the keyless window, the kept-bytes buckets) must
// not depend on which host wrote them: a worker 5 minutes ahead looked
// uncertain adds up before the CRM could have committed them and sent
// them again. So every process keeps its host's clock plus the offset to
// Redis TIME, measured against the midpoint of a round trip and measured
// again every SyncEvery. Locks, leases and limiters use Redis's own
// expiries and TIME already.
//
//	c := fleetclock.New(nil)                    // the host's clock until the first sync
//	err := c.Sync(ctx, store, log)              // a process with a loop (worker), every SyncEvery
//	now := c.Read(ctx, store, log, time.Second) // or measured on use (intake)
package fleetclock

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// SyncEvery is how often the offset to Redis's clock is measured again
// (hosts' clocks drift, and NTP steps them).
const SyncEvery = time.Minute

// SkewWarn is the difference between a host's clock and Redis's beyond
// which a process logs it, once, with the offset. The process behaves the
// same either side of it: it keeps Redis's time.
const SkewWarn = time.Second

// Source tells Redis's time; *rdb.Store is one.
type Source interface {
	Time(ctx context.Context) (time.Time, error)
}

// Clock is Redis's time as a process keeps it: the host's clock plus the
// last measured offset. Until the first measurement, or while Redis
// cannot be reached, the offset is zero: the host's clock. Safe for
// concurrent use; build it with New.
type Clock struct {
	local   func() time.Time
	offset  atomic.Int64 // nanoseconds to add to local
	synced  atomic.Int64 // local Unix nanoseconds of the last measurement, 0 none
	syncing atomic.Bool  // a background measurement is under way
	first   sync.Mutex   // the first measurement, made by one caller of Read
	warned  atomic.Bool
}

// New returns a clock on the host's clock local (nil: time.Now), which
// tests skew.
func New(local func() time.Time) *Clock {
	if local == nil {
		local = time.Now
	}
	return &Clock{local: local}
}

// Now is the fleet's time.
func (c *Clock) Now() time.Time { return c.local().Add(c.Offset()) }

// Offset is the last measured difference from the host's clock to
// Redis's.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Sync measures the offset to Redis's clock now, against the midpoint of
// the round trip (its error is at most half the round trip), and logs a
// difference beyond SkewWarn once per clock.
func (c *Clock) Sync(ctx context.Context, src Source, log *zap.Logger) error {
	t0 := c.local()
	rt, err := src.Time(ctx)
	if err != nil {
		return err
	}
	t1 := c.local()
	off := rt.Sub(t0.Add(t1.Sub(t0) / 2))
	c.offset.Store(int64(off))
	c.synced.Store(t1.UnixNano())
	if (off > SkewWarn || off < -SkewWarn) && c.warned.CompareAndSwap(false, true) && log != nil {
		log.Warn("this host's clock differs from Redis's; LeadRelay keeps Redis's time (fix the host's NTP)",
			zap.Duration("offset", off), zap.Duration("bound", SkewWarn))
	}
	return nil
}

// Read is the fleet's time for a process that has no loop of its own
// (intake): the first caller measures the offset inline, within ctx,
// while concurrent first callers wait for it; once the measurement is
// SyncEvery old, one caller measures it again in the background, bounded
// by timeout, and every caller reads on meanwhile.
func (c *Clock) Read(ctx context.Context, src Source, log *zap.Logger, timeout time.Duration) time.Time {
	last := c.synced.Load()
	if last == 0 {
		c.first.Lock()
		if c.synced.Load() == 0 {
			sctx, cancel := context.WithTimeout(ctx, timeout)
			if err := c.Sync(sctx, src, log); err != nil && log != nil {
				log.Debug("Redis's clock not read; the host's clock is used until it is", zap.Error(err))
			}
			cancel()
		}
		c.first.Unlock()
		return c.Now()
	}
	if time.Duration(c.local().UnixNano()-last) >= SyncEvery && c.syncing.CompareAndSwap(false, true) {
		go func() {
			defer c.syncing.Store(false)
			sctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if err := c.Sync(sctx, src, log); err != nil && log != nil {
				log.Debug("Redis's clock not read; the last offset to it is kept", zap.Error(err))
			}
		}()
	}
	return c.Now()
}
