package producer

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// sealLookEvery is how long the producer trusts its last look at the
// fleet: a worker registers every 10 s.
const sealLookEvery = 10 * time.Second

// sealGate remembers whether every worker serving the queue opens sealed
// payloads, as last looked.
type sealGate struct {
	mu     sync.Mutex
	at     time.Time // of the last look; zero before the first
	ok     bool
	looked bool // a look succeeded
}

// codec is the Codec this publish encodes with: Options.Codec, unless a
// worker that cannot open sealed payloads serves the queue (one of the
// version before sealing, during a rolling upgrade, or one run with
// LEADRELAY_DATA_UNENCRYPTED): then plaintext, as that worker reads, and
// `ctl rekey` seals it later. A look that fails keeps the last answer
// (sealing, before the first).
func (p *Publisher) codec(ctx context.Context) lead.Codec {
	if !p.o.Codec.Sealing() {
		return p.o.Codec
	}
	g := &p.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if g.at.IsZero() || now.Sub(g.at) >= sealLookEvery {
		first := g.at.IsZero()
		g.at = now
		old, err := UnsealingWorkers(ctx, p.rdb, p.o.Queue)
		switch {
		case err != nil:
			g.ok = g.ok || first
		case old > 0 && (g.ok || !g.looked):
			p.log.Warn("workers that cannot open sealed payloads serve the queue: leads are queued in plaintext until they are gone",
				zap.Int("workers", old))
		case old == 0 && g.looked && !g.ok:
			p.log.Info("every worker opens sealed payloads: leads are queued sealed again")
		}
		if err == nil {
			g.ok, g.looked = old == 0, true
		}
	}
	if g.ok {
		return p.o.Codec
	}
	return lead.Codec{}
}

// UnsealingWorkers counts the asynq servers serving queue that are not
// registered as opening sealed payloads (rdb.SealersKey): workers of the
// version before sealing, or run without data keys.
func UnsealingWorkers(ctx context.Context, rc redis.UniversalClient, queue string) (int, error) {
	servers, err := asynq.NewInspectorFromRedisClient(rc).Servers()
	if err != nil {
		return 0, err
	}
	sealers, err := rdb.New(rc).Sealers(ctx, time.Now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range servers {
		if _, ours := s.Queues[queue]; ours && !sealers[s.Host+":"+strconv.Itoa(s.PID)] {
			n++
		}
	}
	return n, nil
}
