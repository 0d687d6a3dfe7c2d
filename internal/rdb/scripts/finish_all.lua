-- finish_all: the whole of Finish on a single primary: finish, and only
-- for a marker it wrote (so a retried Finish counts nothing twice) the
-- previous version's marker if asked, the site's backlog count, the day's
-- counters (all and the site's; their TTL set once, by the count that
-- creates the key or the site's field: a day's keys live 8 days from its
-- first delivery, not its last) and the site's last delivery; then the
-- CRM id's claim and the fleet's top CRM id; the run's timeline entry
-- (unless this same marker was there already: a retried Finish records
-- it once; nor when the marker implies it: a held run's plain first add
-- on a lead with no timeline yet, which Runs reads back from the marker);
-- and the CRM id as the result of the lead's asynq task, if
-- that task is there (asynq's ResultWriter writes the same field), so a
-- delivery costs one round trip, not three.
-- KEYS: 1 delivered marker, 2 attempt record, 3 lock, 4 claims bucket,
--   5 legacy claim, 6 journal meta, 7 day counter, 8 backlog,
--   9 legacy marker, 10 the day's per-site counts, 11 last delivery per
--   site, 12 timeline, 13 asynq task
-- ARGV: 1 marker, 2 marker ttl ms, 3 token, 4 CRM id (0: none), 5 lead id,
--   6 claim ttl ms, 7 site, 8 legacy marker (empty: none), 9 day counter
--   ttl ms, 10 delivery time ms, 11 timeline entry (JSON; '': none),
--   12 timeline cap, 13 timeline ttl ms, 14 task result ('': none),
--   15 '1' when the marker implies the entry
-- uses: holds, finish, claim, raise, unreserve, record_run, implied
-- Answers: {old marker, claim holder, held (1/0)}, the first two empty
-- when there is none.
local old, held = finish(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
if not old then
  if ARGV[8] ~= '' then redis.call('SET', KEYS[9], ARGV[8], 'NX', 'PX', ARGV[2]) end
  if ARGV[7] ~= '' then
    unreserve(KEYS[8], ARGV[7])
    if redis.call('HINCRBY', KEYS[10], ARGV[7], 1) == 1 then redis.call('PEXPIRE', KEYS[10], ARGV[9]) end
    redis.call('HSET', KEYS[11], ARGV[7], ARGV[10])
  end
  if redis.call('INCR', KEYS[7]) == 1 then redis.call('PEXPIRE', KEYS[7], ARGV[9]) end
end
local holder = ''
if tonumber(ARGV[4]) > 0 then
  holder = claim(KEYS[4], KEYS[5], ARGV[4], ARGV[5], ARGV[6])
  raise(KEYS[6], 'crm_top', ARGV[4])
end
if ARGV[11] ~= '' and old ~= ARGV[1] and not implied(KEYS[12], held, ARGV[15]) then
  record_run(KEYS[12], held, ARGV[11], '', ARGV[12], ARGV[13])
end
if ARGV[14] ~= '' and redis.call('EXISTS', KEYS[13]) == 1 then
  redis.call('HSET', KEYS[13], 'result', ARGV[14])
end
return {old or '', holder, held and 1 or 0}
