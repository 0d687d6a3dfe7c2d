-- begin: Begin on a Redis Cluster, the lead's keys alone (the fleet's
-- live in other slots and are pipelined beside it).
-- KEYS: 1 delivered marker, 2 lock, 3 attempt record
-- ARGV: 1 token, 2 lock ttl ms, 3 now ms, 4 record ttl ms, 5 watermark
-- uses: begin
-- Answers: begin's.
return begin(KEYS[1], KEYS[2], KEYS[3], nil, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
