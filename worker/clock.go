package worker

import (
	"context"

	"go.uber.org/zap"

	"leadrelay/internal/fleetclock"
)

// One clock for the fleet (issue 17, point 2; package fleetclock). A
// worker's clock is the host's (Options.Clock) plus the offset to Redis
// TIME, measured at Start and every fleetclock.SyncEvery: the settle time
// of an uncertain add, the sent time of an attempt, the circuit's open and
// probe times and the CRM look-up's date window are written by one worker
// and read by another.

// ClockSkewWarn is fleetclock.SkewWarn: the difference between a worker
// host's clock and Redis's beyond which the worker logs it, once. The
// worker behaves the same either side of it: it keeps Redis's time.
const ClockSkewWarn = fleetclock.SkewWarn

// keepClock measures the offset now (bounded by bookkeepingTimeout), so
// the first runs keep Redis's time, then every fleetclock.SyncEvery in
// the background while ctx lives.
func (h *Handler) keepClock(ctx context.Context) {
	syncNow := func() {
		sctx, cancel := context.WithTimeout(ctx, bookkeepingTimeout)
		defer cancel()
		if err := h.clock.Sync(sctx, h.store, h.log); err != nil && ctx.Err() == nil {
			h.log.Warn("Redis's clock not read; the last offset to it is kept", zap.Error(err))
		}
	}
	syncNow()
	go every(ctx, fleetclock.SyncEvery, syncNow)
}
