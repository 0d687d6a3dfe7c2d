-- finish(delivered, attempt, lock, marker, ttl, token): records a
-- delivery: the marker, unless one exists (which it returns). The marker
-- is the CRM's word and no run's claim, so a run that no longer holds the
-- lead writes it too: losing it could cost a second add. The attempt
-- record goes only while the run holds the lead (holds); the run's own
-- lock goes in any case. Answers the old marker (or false) and whether
-- the run held the lead.
local function finish(delivered, attempt, lock, marker, ttl, token)
  local old = redis.call('GET', delivered)
  if not old then redis.call('SET', delivered, marker, 'PX', ttl) end
  local held = holds(lock, attempt, token)
  if held then redis.call('DEL', attempt) end
  if redis.call('GET', lock) == token then redis.call('DEL', lock) end
  return old, held
end
