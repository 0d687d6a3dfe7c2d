-- reserve(KEYS, ARGV): the admission of reserve.lua (its header names the
-- KEYS and ARGV it reads), for the scripts that admit a lead: reserve and
-- admit_keyless.
local function reserve(KEYS, ARGV)
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
end
