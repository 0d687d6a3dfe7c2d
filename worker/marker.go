package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys of the worker (docs/redis-keys.md lists them all).
const (
	keyPrefix  = "leadrelay:"
	claimedKey = keyPrefix + "crm:claimed"
)

func deliveredKey(id string) string { return keyPrefix + "delivered:" + id }

// DeliveredCountKey is the Redis counter of leads delivered on day's UTC
// date (kept 8 days), which `leadrelay ctl queues` reports.
func DeliveredCountKey(day time.Time) string {
	return keyPrefix + "stats:delivered:" + day.UTC().Format("2006-01-02")
}

// claimedRetention is how long a CRM id stays in the claimed set (v1
// reconcile). A reconcile looks back to a lead's first attempt, which lies
// within the retry budget (about 3 days by default).
const claimedRetention = 7 * 24 * time.Hour

// Marker is the delivered marker, leadrelay:delivered:{lead id}: proof that
// the CRM holds the lead, checked before every add.
type Marker struct {
	// CRMID is the CRM's id of the lead.
	CRMID int64 `json:"crm_id"`
	// At is when the delivery was recorded.
	At time.Time `json:"at"`
	// LeadID is the relay's lead id.
	LeadID string `json:"lead_id"`
	// Via is "reconcile" when a reconcile found the lead at the CRM;
	// empty for a plain add.
	Via string `json:"via,omitempty"`
}

// result is the task result asynq keeps with a delivered task.
type result struct {
	CRMID       int64     `json:"crm_id"`
	DeliveredAt time.Time `json:"delivered_at"`
	Duplicate   bool      `json:"duplicate,omitempty"`
}

func parseMarker(s string) (*Marker, error) {
	var m Marker
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode delivered marker: %w", err)
	}
	return &m, nil
}

// finishScript records a delivery: the marker (unless one exists, which it
// returns), the claimed CRM id (v1), and drops the attempt record and our
// lock, all at once.
// It also counts the delivery in the day's counter (DeliveredCountKey).
// KEYS: delivered, attempt, lock, claimed, day counter. ARGV: marker, ttl
// ms, token, crm id ("" = no claim), now ms, claim cutoff ms.
var finishScript = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
if not old then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('INCR', KEYS[5])
  redis.call('EXPIRE', KEYS[5], 691200)
end
redis.call('DEL', KEYS[2])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[6])
end
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return old
`)

// finish records m as delivered. It returns the marker that was there
// already, if any (then m was not written).
func (h *Handler) finish(ctx context.Context, m Marker, token string, claim bool) (*Marker, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	crm := ""
	if claim {
		crm = strconv.FormatInt(m.CRMID, 10)
	}
	now := h.o.Clock()
	res, err := finishScript.Run(ctx, h.rdb,
		[]string{deliveredKey(m.LeadID), attemptKey(m.LeadID), lockKey(m.LeadID), claimedKey, DeliveredCountKey(now)},
		b, h.o.DeliveredTTL.Milliseconds(), token, crm,
		now.UnixMilli(), now.Add(-claimedRetention).UnixMilli()).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, _ := res.(string)
	return parseMarker(s)
}
