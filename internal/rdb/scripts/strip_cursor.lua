-- strip_cursor: moves the completed-task sweep's cursor to (ARGV[1],
-- ARGV[2]) if that is further than it stands, or if it stands beyond the
-- furthest a cursor can be now (the tasks' retention was shortened: their
-- ends moved back). Several workers sweeping at once keep the furthest.
-- The cursor expires at its own second, when every task it covers has
-- expired.
-- KEYS: 1 the cursor (StripCursorKey), "<second> <skip>"
-- ARGV: 1 the new cursor's second (Unix), 2 its skip (the tasks of that
-- second read already), 3 the furthest second a cursor can be now (now +
-- the retention)
-- Answers: 1 moved; 0 left where it was.
local at, skip, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = redis.call('GET', KEYS[1])
if cur then
  local s, k = string.match(cur, '^(%d+) (%d+)$')
  s, k = tonumber(s), tonumber(k)
  if s and s <= limit and (s > at or (s == at and k >= skip)) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
