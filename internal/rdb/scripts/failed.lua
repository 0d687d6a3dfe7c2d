-- failed: records a failed run in the lead's attempt record: its reason
-- (the last failure's, which a status shows), and one more run when it
-- spent an attempt or ended the lead; only while the run holds the lead
-- (holds) and the lead is not delivered.
-- KEYS: 1 attempt record, 2 lock, 3 delivered marker
-- ARGV: 1 token, 2 reason (encoded), 3 runs to add (0/1), 4 record ttl ms
-- uses: holds
-- Answers: the runs counted so far, or -1 when fenced.
if redis.call('EXISTS', KEYS[3]) == 1 or not holds(KEYS[2], KEYS[1], ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'reason', ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], 'runs', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return n
