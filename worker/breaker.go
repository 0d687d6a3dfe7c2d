package worker

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// breakerKey holds the circuit breaker shared by every worker process, so
// an outage seen by one pauses all and no lead spends its retries on it.
// Fields: failures (consecutive transient failures), open_until and
// probe_until (unix ms). No key means closed with no failures.
const breakerKey = keyPrefix + "breaker"

// breakerAllowLua decides whether a CRM call may go ahead, answering
// {wait ms, probe, exists}: wait > 0 means the circuit is open (or a
// half-open probe is in flight); probe = 1 means this caller is the
// half-open probe. beginScript runs it in the same round trip that takes
// the lead's lock.
const breakerAllowLua = `
local function breaker_allow(key, now, probeTTL)
  if redis.call('EXISTS', key) == 0 then return {0, 0, 0} end
  local openUntil = tonumber(redis.call('HGET', key, 'open_until') or '0')
  if openUntil == 0 then return {0, 0, 1} end
  if now < openUntil then return {openUntil - now, 0, 1} end
  local probeUntil = tonumber(redis.call('HGET', key, 'probe_until') or '0')
  if now < probeUntil then return {probeUntil - now, 0, 1} end
  redis.call('HSET', key, 'probe_until', now + probeTTL)
  return {0, 1, 1}
end
`

// breakerFailScript counts a transient failure and opens the circuit at
// the threshold; a failure while open or half-open reopens it. It returns
// 1 when the circuit opened. ARGV: now ms, threshold, cooldown ms, key ttl ms.
var breakerFailScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if openUntil > 0 or f >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[3]), 'probe_until', 0)
  if openUntil == 0 then return 1 end
end
return 0
`)

// breakerTicket is what allow found; pass it back to succeeded.
type breakerTicket struct {
	wait   time.Duration // > 0: do not call the CRM
	probe  bool          // this call is the half-open probe
	exists bool          // the breaker has state to reset on success
}

// ticket turns breaker_allow's answer into a ticket and tells the observer.
func (h *Handler) ticket(waitMS, probe, exists int64) breakerTicket {
	h.o.Observer.CRMCircuitOpen(waitMS > 0)
	return breakerTicket{wait: time.Duration(waitMS) * time.Millisecond, probe: probe == 1, exists: exists == 1}
}

// breakerFailed records a transient CRM failure; it reports whether the
// circuit opened now.
func (h *Handler) breakerFailed(ctx context.Context) (bool, error) {
	n, err := breakerFailScript.Run(ctx, h.rdb, []string{breakerKey},
		h.o.Clock().UnixMilli(), h.o.BreakerThreshold, h.o.BreakerCooldown.Milliseconds(),
		(10 * (h.o.BreakerCooldown + h.o.CRMTimeout)).Milliseconds()).Int()
	if n == 1 {
		h.o.Observer.CRMCircuitOpen(true)
	}
	return n == 1, err
}

// breakerSucceeded closes the circuit after a CRM answer that shows it
// works. It costs a round trip only when the breaker had state.
func (h *Handler) breakerSucceeded(ctx context.Context, t breakerTicket) error {
	if !t.exists {
		return nil
	}
	if err := h.rdb.Del(ctx, breakerKey).Err(); err != nil {
		return err
	}
	h.o.Observer.CRMCircuitOpen(false)
	return nil
}
