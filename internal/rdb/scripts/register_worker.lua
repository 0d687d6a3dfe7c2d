-- register_worker: records a worker process of this version until its
-- expiry, and drops the entries that expired.
-- KEYS: 1 workers
-- ARGV: 1 process ("host:pid"), 2 its expiry ms, 3 the key's ttl ms, 4 now ms
-- Answers: entries dropped.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local now, dropped = tonumber(ARGV[4]), 0
for i = 1, #all, 2 do
  if (tonumber(all[i + 1]) or 0) < now then
    redis.call('HDEL', KEYS[1], all[i])
    dropped = dropped + 1
  end
end
return dropped
