-- finish(delivered, attempt, lock, marker, ttl, token): records a
-- delivery: the marker (unless one exists, which it returns), drops the
-- attempt record and our lock.
local function finish(delivered, attempt, lock, marker, ttl, token)
  local old = redis.call('GET', delivered)
  if not old then redis.call('SET', delivered, marker, 'PX', ttl) end
  redis.call('DEL', attempt)
  if redis.call('GET', lock) == token then redis.call('DEL', lock) end
  return old
end
