-- circuit_fail: counts a transient failure and opens the circuit at the
-- threshold; a failure while open or half-open reopens it.
-- KEYS: 1 breaker
-- ARGV: 1 now ms, 2 threshold, 3 cooldown ms, 4 ttl ms
-- Answers: 1 the circuit opened now, 2 it reopened, 0 it stays closed.
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
