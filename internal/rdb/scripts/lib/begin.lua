-- begin(delivered, lock, attempt, legacy, token, lockTTL, now, recordTTL, w):
-- a delivery's first step, and a delivered lead's only one. Return the
-- marker if there is one (this version's, or else the previous version's
-- when legacy names its key); else take the lock, and name this run
-- (token) in the attempt record, so the runs before it are fenced off
-- (holds); else, unless an earlier add is uncertain, write the attempt
-- record ahead of the add.
-- Answers {'delivered', marker}, {'busy', lock pttl} or {'send' or
-- 'uncertain', state, first_at, sent_at, settle_at, sends, dead, w}.
local function begin(delivered, lock, attempt, legacy, token, lockTTL, now, recordTTL, w)
  local m = redis.call('GET', delivered)
  if not m and legacy then m = redis.call('GET', legacy) end
  if m then return {'delivered', m} end
  if not redis.call('SET', lock, token, 'NX', 'PX', lockTTL) then
    return {'busy', tostring(redis.call('PTTL', lock))}
  end
  redis.call('HSET', attempt, 'run', token)
  local a = redis.call('HMGET', attempt, 'state', 'first_at', 'sent_at', 'settle_at', 'sends', 'dead', 'w')
  local st = a[1] or ''
  if st == 'sending' or st == 'uncertain' then
    return {'uncertain', st, a[2] or '', a[3] or '', a[4] or '', a[5] or '', a[6] or '', a[7] or ''}
  end
  redis.call('HSETNX', attempt, 'first_at', now)
  redis.call('HSETNX', attempt, 'w', w)
  redis.call('HSET', attempt, 'state', 'sending', 'sent_at', now, 'prev', st)
  local n = redis.call('HINCRBY', attempt, 'sends', 1)
  redis.call('PEXPIRE', attempt, recordTTL)
  local r = redis.call('HMGET', attempt, 'first_at', 'w')
  return {'send', 'sending', r[1], now, '', tostring(n), a[6] or '', r[2]}
end
