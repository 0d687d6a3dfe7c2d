-- holds(lock, attempt, token): whether the run of token still holds the
-- lead, the fence every write of its delivery state passes: no other run
-- holds the lock, and none began after this one (begin names the run in
-- the attempt record's 'run'). A run whose lock expired with no one
-- taking over still holds the lead; one cut off while another took over
-- holds nothing, and its late writes change nothing.
local function holds(lock, attempt, token)
  local holder = redis.call('GET', lock)
  if holder and holder ~= token then return false end
  local run = redis.call('HGET', attempt, 'run')
  return (not run) or run == token
end
