-- finish: Finish on a Redis Cluster, the lead's keys alone (the claim,
-- counters and backlog live in other slots and are pipelined beside it).
-- KEYS: 1 delivered marker, 2 attempt record, 3 lock
-- ARGV: 1 marker, 2 marker ttl ms, 3 token
-- uses: holds, finish
-- Answers: {the marker that was there already or '', held (1/0)}.
local old, held = finish(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
return {old or '', held and 1 or 0}
