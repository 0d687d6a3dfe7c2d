-- record_run: appends a run to the lead's timeline, oldest first, and
-- keeps the newest ARGV[4] entries. A run postponed for the same reason as
-- the entry before it (the same fold key) updates that entry instead (one
-- more repeat, the latest start), so an outage's postponements take one.
-- A run's entry is a fact, like a delivered marker: it is written whether
-- or not the run still holds the lead (holds), marked fenced ('f') when
-- another run took the lead over, whose entries it leaves alone.
-- KEYS: 1 timeline, 2 lock, 3 attempt record
-- ARGV: 1 token, 2 entry (JSON), 3 fold key ('' never folds), 4 cap,
--       5 ttl ms
-- uses: holds
-- Answers: 1 written while the run held the lead, 0 written as fenced.
local held = holds(KEYS[2], KEYS[3], ARGV[1])
local e = cjson.decode(ARGV[2])
if not held then e.f = 1 end
local last = ARGV[3] ~= '' and redis.call('LINDEX', KEYS[1], -1)
local l = last and cjson.decode(last)
if l and l.k == ARGV[3] then
  l.n = (l.n or 0) + 1
  l.last, l.w, l.ms = e.at, e.w, e.ms
  if e.f then l.f = 1 end
  redis.call('LSET', KEYS[1], -1, cjson.encode(l))
else
  if ARGV[3] ~= '' then e.k = ARGV[3] end
  redis.call('RPUSH', KEYS[1], cjson.encode(e))
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[4]), -1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if held then return 1 end
return 0
