-- failed: records a failed run in the lead's attempt record: its reason
-- (the last failure's, which a status shows), and one more run when it
-- spent an attempt or ended the lead; only while the run holds the lead
-- (holds) and the lead is not delivered. The run's timeline entry, if
-- given, is written in any case (record_run: marked fenced when the run
-- no longer holds the lead), so a failed run costs one round trip.
-- KEYS: 1 attempt record, 2 lock, 3 delivered marker, 4 timeline
-- ARGV: 1 token, 2 reason (encoded), 3 runs to add (0/1), 4 record ttl ms,
--   5 timeline entry (JSON; '': none), 6 its fold key, 7 timeline cap
-- uses: holds, record_run
-- Answers: the runs counted so far, or -1 when fenced.
local held = holds(KEYS[2], KEYS[1], ARGV[1])
if ARGV[5] ~= '' then record_run(KEYS[4], held, ARGV[5], ARGV[6], ARGV[7], ARGV[4]) end
if redis.call('EXISTS', KEYS[3]) == 1 or not held then return -1 end
redis.call('HSET', KEYS[1], 'reason', ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], 'runs', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return n
