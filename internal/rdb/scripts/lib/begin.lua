-- begin(delivered, lock, attempt, legacy, token, lockTTL, now, recordTTL, w):
-- a delivery's first step, and a delivered lead's only one. Return the
-- marker if there is one (this version's, or else the previous version's
-- when legacy names its key); else take the lock, and name this run
-- (token) in the attempt record, so the runs before it are fenced off
-- (holds); else, unless an earlier add is uncertain, write the attempt
-- record ahead of the add. The record is read once and written with one
-- HSET: first_at and w keep what they hold, sends counts one more.
-- Answers {'delivered', marker}, {'busy', lock pttl} or {'send' or
-- 'uncertain', state, first_at, sent_at, settle_at, sends, dead, w}.
local function begin(delivered, lock, attempt, legacy, token, lockTTL, now, recordTTL, w)
  local m
  if legacy then
    local both = redis.call('MGET', delivered, legacy)
    m = both[1] or both[2]
  else
    m = redis.call('GET', delivered)
  end
  if m then return {'delivered', m} end
  if not redis.call('SET', lock, token, 'NX', 'PX', lockTTL) then
    return {'busy', tostring(redis.call('PTTL', lock))}
  end
  local a = redis.call('HMGET', attempt, 'state', 'first_at', 'sent_at', 'settle_at', 'sends', 'dead', 'w')
  local st = a[1] or ''
  if st == 'sending' or st == 'uncertain' then
    redis.call('HSET', attempt, 'run', token)
    return {'uncertain', st, a[2] or '', a[3] or '', a[4] or '', a[5] or '', a[6] or '', a[7] or ''}
  end
  local first, top = a[2] or now, a[7] or w
  local n = tostring(tonumber(a[5] or '0') + 1)
  redis.call('HSET', attempt, 'run', token, 'state', 'sending', 'sent_at', now, 'prev', st,
    'first_at', first, 'w', top, 'sends', n)
  redis.call('PEXPIRE', attempt, recordTTL)
  return {'send', 'sending', first, now, '', n, a[6] or '', top}
end
