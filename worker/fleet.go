package worker

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// fleetEvery is how often a busy worker registers itself and looks for
// workers of the previous version. An idle worker runs no asynq server,
// so it needs no registration: it looks again before its next server
// starts if its last look is older than this.
const fleetEvery = 10 * time.Second

// fleetWatch is a Worker's part in telling whether workers of the
// previous version serve the queue. It sets the handler's current flag
// once a look finds only workers of this version, and clears it while a
// worker of the previous version runs. That worker reads and writes only
// the previous version's delivered marker (rdb.LegacyDeliveredKey), so
// only while one runs does a delivery write that marker too. Until the
// first look (and in a Handler never looked for) the flag is clear:
// markers of both versions, safe.
type fleetWatch struct {
	insp *asynq.Inspector
	self string    // as asynq names this process's servers: host:pid
	last time.Time // of the last look; only the Run goroutine touches it
}

func (f *fleetWatch) init(rc redis.UniversalClient) {
	host, _ := os.Hostname()
	f.self = host + ":" + strconv.Itoa(os.Getpid())
	f.insp = asynq.NewInspectorFromRedisClient(rc)
}

// fleetLook registers this process and looks at the fleet: always, or
// (ifStale) only when the last look is older than fleetEvery, so a
// registration never lapses while this process's server runs.
func (w *Worker) fleetLook(ctx context.Context, ifStale bool) {
	if ifStale && time.Since(w.fleet.last) < fleetEvery {
		return
	}
	w.fleet.last = time.Now()
	w.h.lookAtFleet(ctx, w.fleet.insp, w.fleet.self)
}

// lookAtFleet registers this process as self and counts the asynq servers
// of the queue that no worker of this version registered.
func (h *Handler) lookAtFleet(ctx context.Context, insp *asynq.Inspector, self string) {
	now := h.o.Clock()
	if err := h.store.RegisterWorker(ctx, self, h.o.Codec.Sealing(), now, 3*fleetEvery); err != nil {
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
