-- journal_merge: adds a page of the CRM's newest leads to the v1 journal
-- and updates the gapless range: a page that reaches down to the
-- journal's top extends it; one that starts above it leaves a gap, so the
-- range restarts at the page. Only the page's ids from ARGV[4] up count
-- for the range: the CRM lists newest first by a date of whole seconds,
-- one second's leads in ascending ids, so a full page may end partway
-- through its oldest second and miss that second's higher ids. A complete
-- page (the CRM's whole list) covers every id from 1. Only the newest
-- ARGV[1] items are kept, and the range starts no lower than the oldest
-- kept.
-- The meta hash's seq counts every send; listed is the highest seq a
-- merged page was listed at, open_at the newest date any merged page
-- showed, open_n the most leads a page showed of it and open_seen when a
-- page first showed it (pages are ordered by what they show, not by seq:
-- two refreshes' list calls may be answered in either order). While
-- that second may still get leads (ARGV[8] after open_seen), seen is
-- listed less open_n, else listed. seq - seen is then what the next page
-- must hold above the journal's top: the sends since the list call, and
-- the open second's leads, which the CRM lists in ascending ids, so a
-- second with more leads than a page can show would leave its newest
-- unseen.
-- KEYS: 1 items (sorted set by CRM id of "id|at ms|fingerprint"), 2 meta
-- ARGV: 1 keep, 2 complete (1/0), 3 seq before the list call, 4 the lowest
--   id that counts for the range, 5 now in µs (negative: Redis TIME),
--   6 the page's newest date in ms (0: none), 7 how many of the page's
--   leads have it, 8 how long in µs a second the CRM listed as its newest
--   may still get leads, then a CRM id and its member per item
-- uses: clock
-- Answers: {from, max}.
local keep = tonumber(ARGV[1])
local from = tonumber(redis.call('HGET', KEYS[2], 'from') or '0')
local top = tonumber(redis.call('HGET', KEYS[2], 'max') or '0')
local low = tonumber(ARGV[4])
local pmin, pmax = nil, 0
for i = 9, #ARGV, 2 do
  local id = tonumber(ARGV[i])
  redis.call('ZADD', KEYS[1], id, ARGV[i+1])
  if id >= low then
    if pmin == nil or id < pmin then pmin = id end
    if id > pmax then pmax = id end
  end
end
if pmin ~= nil then
  if top == 0 or pmin > top + 1 then
    from, top = pmin, pmax
  else
    if pmax > top then top = pmax end
    if pmin < from and pmax + 1 >= from then from = pmin end
  end
end
if ARGV[2] == '1' then from = 1 end
local n = redis.call('ZCARD', KEYS[1])
if n > keep then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - keep - 1)
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if oldest[2] and tonumber(oldest[2]) > from then from = tonumber(oldest[2]) end
end
redis.call('HSET', KEYS[2], 'from', from, 'max', top)
local listed = math.max(tonumber(redis.call('HGET', KEYS[2], 'listed') or '-1'), tonumber(ARGV[3]))
local now = clock(ARGV[5])
local newest, shown = tonumber(ARGV[6]), tonumber(ARGV[7])
local at = tonumber(redis.call('HGET', KEYS[2], 'open_at') or '0')
local on = tonumber(redis.call('HGET', KEYS[2], 'open_n') or '0')
local since = tonumber(redis.call('HGET', KEYS[2], 'open_seen') or '0')
if newest > at then
  at, on, since = newest, shown, now
elseif newest == at and shown > on then
  on = shown
end
local open = 0
if at > 0 and now - since < tonumber(ARGV[8]) then open = on end
redis.call('HSET', KEYS[2], 'listed', listed, 'seen', listed - open, 'open_at', at, 'open_n', on, 'open_seen', since)
return {from, top}
