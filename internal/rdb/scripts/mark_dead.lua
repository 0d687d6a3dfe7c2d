-- mark_dead: records that a lead was dead-lettered: the 'dead' flag, so
-- a later delivery drops its dead-letter record, and, while the run holds
-- the lead (holds), the state it died in (a requeued uncertain lead is
-- looked up first). A run that no longer holds it leaves the state to the
-- newer run, but still flags the lead, whose dead-letter record it wrote.
-- A delivered lead is left alone.
-- KEYS: 1 attempt record, 2 lock, 3 delivered marker
-- ARGV: 1 token, 2 state ('' keeps it), 3 record ttl ms
-- uses: holds
-- Answers: 1 written, 0 fenced (at most the flag written).
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local owned = holds(KEYS[2], KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], 'dead', '1')
if owned and ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'state', ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if owned then return 1 end
return 0
