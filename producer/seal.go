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
// payloads, as last looked. Its mutex guards the answer only: one publish
// looks at a time, outside it, and the others take the last answer
// meanwhile, so a slow Redis never holds every intake request behind one
// look.
type sealGate struct {
	mu      sync.Mutex
	at      time.Time // of the last look begun; zero before the first
	ok      bool
	looked  bool // a look succeeded
	looking bool // a publish is looking now
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
	if p.gate.sealing(ctx, p) {
		return p.o.Codec
	}
	return lead.Codec{}
}

// sealing is the gate's answer, looked again (by this caller, outside the
// lock) when the last look is sealLookEvery old and nobody is looking.
func (g *sealGate) sealing(ctx context.Context, p *Publisher) bool {
	g.mu.Lock()
	now := time.Now() // the look's cadence only: no other process reads it
	look := !g.looking && (g.at.IsZero() || now.Sub(g.at) >= sealLookEvery)
	if look {
		g.at, g.looking = now, true
	}
	ok := g.ok || !g.looked
	g.mu.Unlock()
	if !look {
		return ok
	}
	old, err := UnsealingWorkers(ctx, p.rdb, p.o.Queue)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.looking = false
	if err != nil {
		return g.ok || !g.looked
	}
	switch {
	case old > 0 && (g.ok || !g.looked):
		p.log.Warn("workers that cannot open sealed payloads serve the queue: leads are queued in plaintext until they are gone",
			zap.Int("workers", old))
	case old == 0 && g.looked && !g.ok:
		p.log.Info("every worker opens sealed payloads: leads are queued sealed again")
	}
	g.ok, g.looked = old == 0, true
	return g.ok
}

// UnsealingWorkers counts the asynq servers serving queue that are not
// registered as opening sealed payloads (rdb.SealersKey): workers of the
// version before sealing, or run without data keys. A registration's
// expiry is on the fleet's one clock, Redis's (workers register on it), so
// it is read against Redis TIME: on this host's clock, running ahead, every
// sealer looked gone and leads were queued in plaintext.
func UnsealingWorkers(ctx context.Context, rc redis.UniversalClient, queue string) (int, error) {
	servers, err := asynq.NewInspectorFromRedisClient(rc).Servers()
	if err != nil {
		return 0, err
	}
	store := rdb.New(rc)
	now, err := store.Time(ctx)
	if err != nil {
		return 0, err
	}
	sealers, err := store.Sealers(ctx, now)
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
