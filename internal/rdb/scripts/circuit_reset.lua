-- circuit_reset: closes the circuit and clears any problem: a CRM call
-- worked. It counts the reset (worked), by which circuit_fail tells a lead
-- that fails again while the CRM works for others. It says whether this
-- call ended an outage (the circuit was open, or half-open, with no
-- configuration problem): one caller of the fleet learns it.
-- KEYS: 1 breaker, 2 worked
-- ARGV: 1 worked ttl ms
-- Answers: {the worked count, 1 an outage ended / 0}.
local h = redis.call('HMGET', KEYS[1], 'open_until', 'problem')
local outage = tonumber(h[1] or '0') > 0 and (not h[2] or h[2] == '')
redis.call('DEL', KEYS[1])
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
if outage then return {n, 1} end
return {n, 0}
