-- release: records how an attempt ended and drops the run's lock. The
-- record is written only while the run holds the lead (holds) and the
-- lead is not delivered: a cut-off run's late release changes nothing a
-- newer run wrote. Its own lock it drops in any case.
-- KEYS: 1 lock, 2 attempt record, 3 delivered marker
-- ARGV: 1 token, 2 mode (0 keep, 1 unsend, 2 set), 3 state, 4 settle ms
-- uses: holds
-- Answers: 1 written, 0 fenced.
local owned = redis.call('EXISTS', KEYS[3]) == 0 and holds(KEYS[1], KEYS[2], ARGV[1])
if owned then
  if ARGV[2] == '1' and redis.call('HGET', KEYS[2], 'state') == 'sending' then
    local n = redis.call('HINCRBY', KEYS[2], 'sends', -1)
    if n <= 0 and redis.call('HGET', KEYS[2], 'dead') ~= '1' then
      redis.call('DEL', KEYS[2])
    else
      redis.call('HSET', KEYS[2], 'state', redis.call('HGET', KEYS[2], 'prev') or '')
    end
  elseif ARGV[2] == '2' and redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('HSET', KEYS[2], 'state', ARGV[3], 'settle_at', ARGV[4])
  end
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if owned then return 1 end
return 0
