-- circuit_reset: closes the circuit and clears any problem: a CRM call
-- worked. It counts the reset (worked), by which circuit_fail tells a lead
-- that fails again while the CRM works for others.
-- KEYS: 1 breaker, 2 worked
-- ARGV: 1 worked ttl ms
-- Answers: the worked count.
redis.call('DEL', KEYS[1])
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return n
