package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/rdb"
)

// RedisLeadBudget is the LeadBudget every intake process shares through
// Redis. Use NewRedisLeadBudget.
type RedisLeadBudget struct {
	store *rdb.Store
	rate  rdb.Rate
	clock func() time.Time // nil: Redis TIME
}

// NewRedisLeadBudget lets each site hand in perSec leads a second through
// batches, with a burst of one full batch (MaxBatchLeads) or one second's
// worth, whichever is more. Zero or less returns nil: no budget.
func NewRedisLeadBudget(rc redis.UniversalClient, perSec float64) LeadBudget {
	r := rdb.PerSecond(perSec)
	if r == (rdb.Rate{}) {
		return nil
	}
	r.Burst = max(r.Burst, MaxBatchLeads)
	return &RedisLeadBudget{store: rdb.New(rc), rate: r}
}

// AllowN implements LeadBudget with one script call.
func (b *RedisLeadBudget) AllowN(ctx context.Context, site string, n int) (Decision, error) {
	var now time.Time
	if b.clock != nil {
		now = b.clock()
	}
	wait, err := b.store.IntakeBudget(ctx, site, n, b.rate, now)
	if err != nil {
		return Decision{}, fmt.Errorf("intake lead budget: %w", err)
	}
	return Decision{Allowed: wait == 0, RetryAfter: wait, Limit: LimitSite}, nil
}
