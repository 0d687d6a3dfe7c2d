-- circuit_problem: opens the circuit for a configuration problem,
-- recording what to fix.
-- KEYS: 1 breaker
-- ARGV: 1 now ms, 2 cooldown ms, 3 ttl ms, 4 problem
-- Answers: 1.
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[2]), 'probe_until', 0, 'problem', ARGV[4], 'problem_at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
