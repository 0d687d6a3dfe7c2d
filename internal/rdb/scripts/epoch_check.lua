-- epoch_check: counts the fleet epoch on, and finds a Redis that came back
-- with older data: an epoch lower than the worker counted last, or none
-- when it counted one. Finding it records when, with the highest CRM id
-- the old data recorded (journal meta's crm_top and max: every lead sent
-- since the snapshot has a higher one; never higher than a rollback
-- already guarded recorded), and counts on from the worker's count.
-- KEYS: 1 fleet epoch, 2 rollback, [3 journal meta: a single primary]
-- ARGV: 1 the worker's last count (0: none yet), 2 now ms, 3 guard ms
-- Answers: the new epoch, the rollback ("ms|floor", '' when none within
-- the guard), and 1 when this call found it.
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local mine = tonumber(ARGV[1])
local found = 0
if mine > 0 and cur < mine then
  found = 1
  local floor = 0
  if KEYS[3] then
    local m = redis.call('HMGET', KEYS[3], 'crm_top', 'max')
    floor = math.max(tonumber(m[1] or '0') or 0, tonumber(m[2] or '0') or 0)
  end
  -- Another worker, whose count was lower, may have found this rollback
  -- already, and deliveries since have raised crm_top: the floor never
  -- rises while a rollback is guarded (0, unknown, is the lowest).
  local old = redis.call('GET', KEYS[2])
  if old then
    floor = math.min(floor, tonumber(string.match(old, '|(%d+)$') or '0') or 0)
  end
  redis.call('SET', KEYS[2], ARGV[2] .. '|' .. floor, 'PX', ARGV[3])
  redis.call('SET', KEYS[1], mine)
end
local epoch = redis.call('INCR', KEYS[1])
return {epoch, redis.call('GET', KEYS[2]) or '', found}
