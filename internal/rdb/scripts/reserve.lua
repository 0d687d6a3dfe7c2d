-- reserve: counts a lead in its site's backlog if the site's and the
-- queue's caps allow, unless the lead is delivered. The queue's backlog is
-- asynq's own (pending, active, scheduled and retry tasks), so it is
-- exact. A queue with nothing undelivered has every site at zero, which
-- the script restores: counts that drifted (an intake that died between
-- reserving and enqueueing, a task deleted by hand) heal each time the
-- queue drains.
-- A site's share of Redis's memory: each lead's bytes are charged to the
-- site in time buckets when it is admitted, and a bucket is forgotten
-- once the lead could no longer be kept: its task lives for the keep
-- time (asynq's retention of a delivered task). The bytes of the buckets
-- within the keep time are what the site keeps, undelivered or delivered;
-- a lead past the site's share is refused.
-- KEYS: 1 backlog, 2 asynq pending, 3 asynq active, 4 asynq scheduled,
--   5 asynq retry, 6 the site's kept bytes (hash bucket → bytes),
--   [7 the lead's delivered marker, on a single primary; on a Cluster it
--   lives in another slot and is read beside the script]
-- ARGV: 1 site, 2 site cap, 3 total cap (0: none), 4 the lead's bytes,
--   5 the site's share in bytes (0: none), 6 now ms, 7 bucket ms, 8 keep ms
-- Answers: {code, site count, total[, marker, or the bytes kept]}: code 0
-- reserved, 1 delivered (nothing counted), 2 site full, 3 total full,
-- 4 the site's share full ({4, count, total, bytes kept}).
if KEYS[7] then
  local m = redis.call('GET', KEYS[7])
  if m then return {1, 0, 0, m} end
end
local total = redis.call('LLEN', KEYS[2]) + redis.call('LLEN', KEYS[3]) + redis.call('ZCARD', KEYS[4]) + redis.call('ZCARD', KEYS[5])
if total == 0 then redis.call('DEL', KEYS[1]) end
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local siteMax, totalMax = tonumber(ARGV[2]), tonumber(ARGV[3])
if siteMax > 0 and n + 1 > siteMax then return {2, n, total} end
if totalMax > 0 and total + 1 > totalMax then return {3, n, total} end
local bytes, share = tonumber(ARGV[4]), tonumber(ARGV[5])
if share > 0 then
  local bucketMS, keepMS = tonumber(ARGV[7]), tonumber(ARGV[8])
  local now = math.floor(tonumber(ARGV[6]) / bucketMS)
  local oldest = now - math.ceil(keepMS / bucketMS)
  local kept = 0
  local b = redis.call('HGETALL', KEYS[6])
  for i = 1, #b, 2 do
    if tonumber(b[i]) < oldest then
      redis.call('HDEL', KEYS[6], b[i])
    else
      kept = kept + tonumber(b[i + 1])
    end
  end
  if kept + bytes > share then return {4, n, total, kept} end
  redis.call('HINCRBY', KEYS[6], tostring(now), bytes)
  redis.call('PEXPIRE', KEYS[6], keepMS + 2 * bucketMS)
end
return {0, redis.call('HINCRBY', KEYS[1], ARGV[1], 1), total + 1}
