package rdb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Circuit is the fleet's view of the CRM (BreakerKey): whether calls may go
// ahead, and the configuration problem an operator must fix, if any.
type Circuit struct {
	// Wait > 0: the circuit is open (or a half-open probe is in flight);
	// do not call the CRM for this long.
	Wait time.Duration
	// ProbeDue: the cooldown is over and no probe is in flight; the next
	// caller may claim the probe (ClaimProbe).
	ProbeDue bool
	// Exists: the circuit has state to reset after a working call.
	Exists bool
	// Problem is the configuration problem seen by any worker, "" if none.
	Problem string
	// ProblemAt is when it was last seen.
	ProblemAt time.Time
}

// circuitPeekLua reads the circuit without changing it: {wait ms, probe
// due (1/0), exists (1/0), problem, problem at ms}.
const circuitPeekLua = `
local function peek(breaker, nowArg)
  if redis.call('EXISTS', breaker) == 0 then return {'0', '0', '0', '', ''} end
  local h = redis.call('HMGET', breaker, 'open_until', 'probe_until', 'problem', 'problem_at')
  local now = tonumber(nowArg)
  local ou = tonumber(h[1] or '0')
  local pu = tonumber(h[2] or '0')
  local wait, due = 0, 0
  if ou > 0 then
    if now < ou then wait = ou - now
    elseif now < pu then wait = pu - now
    else due = 1 end
  end
  return {tostring(wait), tostring(due), '1', h[3] or '', h[4] or ''}
end
`

// circuitPeekScript runs circuitPeekLua. KEYS: breaker. ARGV: now ms.
var circuitPeekScript = redis.NewScript(circuitPeekLua + `
return peek(KEYS[1], ARGV[1])
`)

func parseCircuit(v any) (Circuit, error) {
	f, err := asStrings(v)
	if err != nil || len(f) != 5 {
		return Circuit{}, fmt.Errorf("rdb: circuit: unexpected answer %v", v)
	}
	w, _ := strconv.ParseInt(f[0], 10, 64)
	return Circuit{Wait: time.Duration(w) * time.Millisecond, ProbeDue: f[1] == "1", Exists: f[2] == "1",
		Problem: f[3], ProblemAt: fromMS(f[4])}, nil
}

// Circuit reads the fleet's circuit (for readiness and gauges).
func (s *Store) Circuit(ctx context.Context, now time.Time) (Circuit, error) {
	v, err := circuitPeekScript.Run(ctx, s.c, []string{BreakerKey}, ms(now)).Result()
	if err != nil {
		return Circuit{}, err
	}
	return parseCircuit(v)
}

// claimProbeScript makes the caller the half-open probe if the cooldown is
// over and no probe is in flight. KEYS: breaker. ARGV: now ms, probe ttl ms.
var claimProbeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local ou = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local pu = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if ou == 0 then return 1 end
if now < ou or now < pu then return 0 end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[2]))
return 1
`)

// ClaimProbe makes this caller the half-open probe; false means another
// caller is probing or the circuit reopened.
func (s *Store) ClaimProbe(ctx context.Context, now time.Time, ttl time.Duration) (bool, error) {
	n, err := claimProbeScript.Run(ctx, s.c, []string{BreakerKey}, ms(now), ttl.Milliseconds()).Int()
	return n == 1, err
}

// circuitFailScript counts a transient failure and opens the circuit at
// the threshold; a failure while open or half-open reopens it. It answers
// 1 when the circuit opened now, 2 when it reopened, 0 while it stays
// closed. ARGV: now ms, threshold, cooldown ms, ttl ms.
var circuitFailScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local ou = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ou > 0 or f >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[3]), 'probe_until', 0)
  if ou == 0 then return 1 end
  return 2
end
return 0
`)

// CircuitArgs tune the circuit's scripts.
type CircuitArgs struct {
	// Now is the time of the call.
	Now time.Time
	// Threshold is the consecutive transient failures that open it.
	Threshold int
	// Cooldown is how long it stays open before a probe.
	Cooldown time.Duration
	// TTL bounds the key's life, so a stale circuit cannot outlive a fleet.
	TTL time.Duration
}

// CircuitState is what a failure did to the circuit.
type CircuitState int

// The answers of CircuitFailed.
const (
	// CircuitClosed: the failure was counted; the circuit stays closed.
	CircuitClosed CircuitState = iota
	// CircuitOpened: this failure opened it.
	CircuitOpened
	// CircuitReopened: it was open or half-open and opens again.
	CircuitReopened
)

// CircuitFailed records a transient CRM failure.
func (s *Store) CircuitFailed(ctx context.Context, a CircuitArgs) (CircuitState, error) {
	n, err := circuitFailScript.Run(ctx, s.c, []string{BreakerKey},
		ms(a.Now), a.Threshold, a.Cooldown.Milliseconds(), a.TTL.Milliseconds()).Int()
	return CircuitState(n), err
}

// circuitProblemScript opens the circuit for a configuration problem,
// recording what to fix. ARGV: now ms, cooldown ms, ttl ms, problem.
var circuitProblemScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[2]), 'probe_until', 0, 'problem', ARGV[4], 'problem_at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// CircuitProblem opens the circuit for every worker because the CRM's
// configuration is wrong, recording problem for every readiness check.
func (s *Store) CircuitProblem(ctx context.Context, a CircuitArgs, problem string) error {
	return circuitProblemScript.Run(ctx, s.c, []string{BreakerKey},
		ms(a.Now), a.Cooldown.Milliseconds(), a.TTL.Milliseconds(), problem).Err()
}

// CircuitReset closes the circuit and clears any problem: the CRM works.
func (s *Store) CircuitReset(ctx context.Context) error {
	return s.c.Del(ctx, BreakerKey).Err()
}
