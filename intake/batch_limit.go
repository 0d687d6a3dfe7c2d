package intake

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// budgetScript admits n leads of one site at once, or none (GCRA over n
// emission intervals). Answers the wait in µs: 0 admitted.
// KEYS: the site's budget. ARGV: now µs (-1: Redis TIME), interval µs,
// burst, n.
var budgetScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local iv, burst, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now) + n * iv
local allowAt = tat - burst * iv
if now < allowAt then return allowAt - now end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000) + 1))
return 0
`)

// budgetKeyPrefix starts the key of each site's lead budget.
const budgetKeyPrefix = "leadrelay:intake:leadbudget:"

// RedisLeadBudget is the LeadBudget every intake process shares through
// Redis. Use NewRedisLeadBudget.
type RedisLeadBudget struct {
	rdb      redis.UniversalClient
	interval int64 // µs per lead
	burst    int64
	clock    func() time.Time // nil: Redis TIME
}

// NewRedisLeadBudget lets each site hand in perSec leads a second through
// batches, with a burst of one full batch (MaxBatchLeads) or one second's
// worth, whichever is more. Zero or less returns nil: no budget.
func NewRedisLeadBudget(rdb redis.UniversalClient, perSec float64) LeadBudget {
	if !(perSec > 0) || math.IsInf(perSec, 1) {
		return nil
	}
	return &RedisLeadBudget{rdb: rdb, interval: max(int64(math.Round(1e6/perSec)), 1),
		burst: max(int64(math.Ceil(perSec)), MaxBatchLeads)}
}

// AllowN implements LeadBudget with one script call.
func (b *RedisLeadBudget) AllowN(ctx context.Context, site string, n int) (Decision, error) {
	now := int64(-1)
	if b.clock != nil {
		now = b.clock().UnixMicro()
	}
	wait, err := budgetScript.Run(ctx, b.rdb, []string{budgetKeyPrefix + site}, now, b.interval, b.burst, n).Int64()
	if err != nil {
		return Decision{}, fmt.Errorf("intake lead budget: %w", err)
	}
	return Decision{Allowed: wait == 0, RetryAfter: time.Duration(wait) * time.Microsecond, Limit: LimitSite}, nil
}
