-- finish: Finish on a Redis Cluster, the lead's keys alone (the claim,
-- counters and backlog live in other slots and are pipelined beside it):
-- the marker, and the run's timeline entry unless this same marker was
-- there already (a Finish retried after a lost answer records it once),
-- nor when the marker implies it (implied).
-- KEYS: 1 delivered marker, 2 attempt record, 3 lock, 4 timeline
-- ARGV: 1 marker, 2 marker ttl ms, 3 token, 4 timeline entry (JSON; '':
--   none), 5 timeline cap, 6 timeline ttl ms, 7 '1' when the marker
--   implies the entry
-- uses: holds, finish, record_run, implied
-- Answers: {the marker that was there already or '', held (1/0)}.
local old, held = finish(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
if ARGV[4] ~= '' and old ~= ARGV[1] and not implied(KEYS[4], held, ARGV[7]) then
  record_run(KEYS[4], held, ARGV[4], '', ARGV[5], ARGV[6])
end
return {old or '', held and 1 or 0}
