-- finish(delivered, attempt, lock, marker, ttl, token): records a
-- delivery: the marker, unless one exists (which it returns). The marker
-- is the CRM's word and no run's claim, so a run that no longer holds the
-- lead writes it too: losing it could cost a second add. The attempt
-- record goes only while the run holds the lead (holds), but for its
-- count of runs when the lead failed before: it keeps how many runs the
-- lead took, the delivering run counted once (only a record in flight has
-- a state, so a retried finish counts nothing twice). The run's own lock
-- goes in any case. Answers the old marker (or false) and whether the run
-- held the lead.
local function finish(delivered, attempt, lock, marker, ttl, token)
  local old = redis.call('GET', delivered)
  if not old then redis.call('SET', delivered, marker, 'PX', ttl) end
  local held, holder, f = holds(lock, attempt, token, 'runs', 'state')
  if held then
    local runs = tonumber(f[2] or '0')
    if runs > 0 and f[3] then runs = runs + 1 end
    redis.call('DEL', attempt)
    if runs > 0 then
      redis.call('HSET', attempt, 'runs', runs)
      redis.call('PEXPIRE', attempt, ttl)
    end
  end
  if holder == token then redis.call('DEL', lock) end
  return old, held
end
