-- holds(lock, attempt, token, ...): whether the run of token still holds
-- the lead, the fence every write of its delivery state passes: no other
-- run holds the lock, and none began after this one (begin names the run
-- in the attempt record's 'run'). A run whose lock expired with no one
-- taking over still holds the lead; one cut off while another took over
-- holds nothing, and its late writes change nothing. Also answers what it
-- read, so a caller reads nothing twice: the lock's holder (false: none)
-- and, when it read the record, the record's 'run' and then the fields
-- named after token, with the same HMGET.
local function holds(lock, attempt, token, ...)
  local holder = redis.call('GET', lock)
  if holder and holder ~= token then return false, holder end
  local f = redis.call('HMGET', attempt, 'run', ...)
  return (not f[1]) or f[1] == token, holder, f
end
