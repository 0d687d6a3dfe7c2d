-- circuit_fail: counts a CRM failure and opens the circuit at the
-- threshold; a failure while open or half-open reopens it. A failure that
-- follows its lead is not counted: the lead failed before, and the CRM
-- worked for others since that failure was counted (the worked count
-- grew), while the circuit is closed. Such a failure is the lead's, not
-- the CRM's (issue 17, poison leads), and a lead keeps being told apart
-- for as long as it is remembered (KEYS[2], capped: a full memory starts
-- again, and every lead's next failure counts once more).
-- KEYS: 1 breaker, 2 lead fails, 3 worked
-- ARGV: 1 now ms, 2 threshold, 3 cooldown ms, 4 ttl ms, 5 lead id ('':
--   the fleet's), 6 lead fails ttl ms, 7 lead fails cap
-- Answers: 1 the circuit opened now, 2 it reopened, 0 it stays closed,
-- 3 the lead's own failure: nothing counted.
local now = tonumber(ARGV[1])
local ou = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if ARGV[5] ~= '' then
  local worked = tonumber(redis.call('GET', KEYS[3]) or '0')
  local seen = redis.call('HGET', KEYS[2], ARGV[5])
  if ou == 0 and seen and tonumber(seen) < worked then return 3 end
  if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[7]) then redis.call('DEL', KEYS[2]) end
  redis.call('HSET', KEYS[2], ARGV[5], worked)
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ou > 0 or f >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[3]), 'probe_until', 0)
  if ou == 0 then return 1 end
  return 2
end
return 0
