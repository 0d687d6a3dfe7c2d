package worker

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
)

// fleetEvery is how often a worker registers itself and looks for workers
// of the previous version.
const fleetEvery = 10 * time.Second

// watchFleet sets h.current once a look finds only workers of this
// version serving the queue, and clears it while a worker of the previous
// version does. That worker reads and writes only the previous version's
// delivered marker (rdb.LegacyDeliveredKey), so only while one runs does
// a delivery write that marker too. Until the first look (and in a
// Handler never started) it is clear: markers of both versions, safe.
func (h *Handler) watchFleet(ctx context.Context) {
	host, _ := os.Hostname()
	self := host + ":" + strconv.Itoa(os.Getpid()) // as asynq names this process's servers
	insp := asynq.NewInspectorFromRedisClient(h.store.Client())
	go every(ctx, fleetEvery, func() { h.lookAtFleet(ctx, insp, self) })
}

// every runs f now, then every d, until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	f()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// lookAtFleet registers this process as self and counts the asynq servers
// of the queue that no worker of this version registered.
func (h *Handler) lookAtFleet(ctx context.Context, insp *asynq.Inspector, self string) {
	now := h.o.Clock()
	if err := h.store.RegisterWorker(ctx, self, now, 3*fleetEvery); err != nil {
		h.log.Debug("worker registration failed", zap.Error(err))
		return
	}
	live, err := h.store.Workers(ctx, now)
	if err != nil {
		return
	}
	servers, err := insp.Servers()
	if err != nil {
		return
	}
	old := 0
	for _, s := range servers {
		if _, ours := s.Queues[h.o.Queue]; ours && !live[s.Host+":"+strconv.Itoa(s.PID)] {
			old++
		}
	}
	if was := h.current.Swap(old == 0); was != (old == 0) {
		h.log.Info("workers of the previous version serve the queue", zap.Int("count", old),
			zap.Bool("writing_previous_version_markers", old > 0))
	}
}
