-- epoch_check: counts the fleet epoch on, and finds a Redis that came back
-- with older data: an epoch lower than the worker counted last (or none,
-- when it counted one), or, after a restart of Redis (its run id changed),
-- no count since the worker's own. Finding it records when (the rollback
-- key, for ARGV 4 ms) and counts on from the worker's count.
-- KEYS: 1 fleet epoch, 2 rollback
-- ARGV: 1 the worker's last count (0: none yet), 2 restarted (1/0),
--   3 now ms, 4 guard ms
-- Answers: the new epoch, when a rollback was found (ms, 0: none within
-- the guard), and 1 when this call found it.
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local mine = tonumber(ARGV[1])
local found = 0
if mine > 0 and (cur < mine or (ARGV[2] == '1' and cur == mine)) then
  found = 1
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  redis.call('SET', KEYS[1], mine)
end
local epoch = redis.call('INCR', KEYS[1])
return {epoch, tonumber(redis.call('GET', KEYS[2]) or '0'), found}
