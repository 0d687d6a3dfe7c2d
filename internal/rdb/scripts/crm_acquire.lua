-- crm_acquire: admits one CRM request for the whole fleet, atomically: no
-- Retry-After pause in force, a free slot (after dropping expired leases),
-- and a rate token. With adaptive concurrency the slots are the adaptive
-- limit (rounded down, at least 1), never more than the cap. A refusal
-- consumes nothing. Times are µs.
-- KEYS: 1 rate, 2 inflight, 3 pause, 4 adaptive state
-- ARGV: 1 now µs (-1: Redis TIME), 2 emission interval µs (0: no rate
--   limit), 3 burst, 4 slots (0: no cap), 5 lease µs, 6 token, 7 adaptive
--   (1/0), 8 starting limit
-- uses: clock, gcra, gcra_take
-- Answers: {code, wait µs, now µs, latency µs}: code 0 admitted, 1 rate
-- limited, 2 every slot taken, 3 paused; now is the admission time the
-- release measures latency from; latency the adaptive state's smoothed
-- latency (0 when unknown), which paces the wait for a slot.
local now, injected = clock(ARGV[1])
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if now < paused then return {3, paused - now, now, 0} end
local slots = tonumber(ARGV[4])
local lat = 0
if slots > 0 and ARGV[7] == '1' then
  local st = redis.call('HMGET', KEYS[4], 'limit', 'avg')
  local lim = tonumber(st[1] or ARGV[8])
  lat = math.floor(tonumber(st[2] or '0'))
  slots = math.min(slots, math.max(1, math.floor(lim)))
end
if slots > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
  if redis.call('ZCARD', KEYS[2]) >= slots then return {2, 0, now, lat} end
end
local iv = tonumber(ARGV[2])
if iv > 0 then
  local tat, wait = gcra(KEYS[1], now, iv, tonumber(ARGV[3]), 1)
  if wait > 0 then return {1, wait, now, lat} end
  gcra_take(KEYS[1], now, tat, injected)
end
if slots > 0 then
  local lease = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + lease), ARGV[6])
  redis.call('PEXPIRE', KEYS[2], string.format('%.0f', math.ceil(lease / 1000) + 1000))
end
return {0, 0, now, lat}
