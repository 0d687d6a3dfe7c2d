-- circuit_peek: reads the CRM circuit without changing it.
-- KEYS: 1 breaker
-- ARGV: 1 now ms
-- uses: circuit_peek
-- Answers: circuit_peek's.
return circuit_peek(KEYS[1], ARGV[1])
