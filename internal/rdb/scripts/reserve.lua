-- reserve: counts a lead in its site's backlog if the site's and the
-- queue's caps allow, unless the lead is delivered. The queue's backlog is
-- asynq's own (pending, active, scheduled and retry tasks), so it is
-- exact. A queue with nothing undelivered has every site at zero, which
-- the script restores: counts that drifted (an intake that died between
-- reserving and enqueueing, a task deleted by hand) heal each time the
-- queue drains.
-- KEYS: 1 backlog, 2 asynq pending, 3 asynq active, 4 asynq scheduled,
--   5 asynq retry, [6 the lead's delivered marker, on a single primary;
--   on a Cluster it lives in another slot and is read beside the script]
-- ARGV: 1 site, 2 site cap, 3 total cap (0: none)
-- Answers: {code, site count, total[, marker]}: code 0 reserved,
-- 1 delivered (nothing counted), 2 site full, 3 total full.
if KEYS[6] then
  local m = redis.call('GET', KEYS[6])
  if m then return {1, 0, 0, m} end
end
local total = redis.call('LLEN', KEYS[2]) + redis.call('LLEN', KEYS[3]) + redis.call('ZCARD', KEYS[4]) + redis.call('ZCARD', KEYS[5])
if total == 0 then redis.call('DEL', KEYS[1]) end
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local siteMax, totalMax = tonumber(ARGV[2]), tonumber(ARGV[3])
if siteMax > 0 and n + 1 > siteMax then return {2, n, total} end
if totalMax > 0 and total + 1 > totalMax then return {3, n, total} end
return {0, redis.call('HINCRBY', KEYS[1], ARGV[1], 1), total + 1}
