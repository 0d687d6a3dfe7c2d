-- strip_cursor: moves the completed-task sweep's cursor to ARGV[1], if
-- that is further than it stands, or if it stands beyond the furthest a
-- cursor can be now (the tasks' retention was shortened: their ends moved
-- back). Several workers sweeping at once keep the furthest. The cursor
-- expires at its own second, when every task it covers has expired.
-- KEYS: 1 the cursor (StripCursorKey)
-- ARGV: 1 the new cursor (Unix seconds), 2 the furthest a cursor can be
-- now (now + the retention, Unix seconds)
-- Answers: 1 moved; 0 left where it was.
local cur = tonumber(redis.call('GET', KEYS[1]))
local at, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
if cur and cur >= at and cur <= limit then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
