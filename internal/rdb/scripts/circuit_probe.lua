-- circuit_probe: makes the caller the half-open probe if the cooldown is
-- over and no probe is in flight.
-- KEYS: 1 breaker
-- ARGV: 1 now ms, 2 probe ttl ms
-- Answers: 1 this caller probes (or the circuit is closed), 0 not.
local now = tonumber(ARGV[1])
local ou = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local pu = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if ou == 0 then return 1 end
if now < ou or now < pu then return 0 end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[2]))
return 1
