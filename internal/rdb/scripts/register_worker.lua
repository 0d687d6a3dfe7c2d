-- register_worker: records a worker process of this version until its
-- expiry in each registry named, and drops the entries that expired.
-- KEYS: the registries (1 workers; 2 sealers, for a worker that opens
--   sealed payloads)
-- ARGV: 1 process ("host:pid"), 2 its expiry ms, 3 the key's ttl ms, 4 now ms
-- Answers: entries dropped.
local now, dropped = tonumber(ARGV[4]), 0
for _, key in ipairs(KEYS) do
  redis.call('HSET', key, ARGV[1], ARGV[2])
  redis.call('PEXPIRE', key, ARGV[3])
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if (tonumber(all[i + 1]) or 0) < now then
      redis.call('HDEL', key, all[i])
      dropped = dropped + 1
    end
  end
end
return dropped
