-- record_run(timeline, held, entry, fold, cap, ttl): appends a run's
-- entry (JSON) to the lead's timeline, oldest first, keeping the newest
-- cap entries; marked fenced ('f') unless the run held the lead (held).
-- A run postponed for the same reason as the entry before it (the same
-- fold key; '' never folds) updates that entry instead: one more repeat,
-- the latest start.
local function record_run(timeline, held, entry, fold, cap, ttl)
  local e = cjson.decode(entry)
  if not held then e.f = 1 end
  local last = fold ~= '' and redis.call('LINDEX', timeline, -1)
  local l = last and cjson.decode(last)
  if l and l.k == fold then
    l.n = (l.n or 0) + 1
    l.last, l.w, l.ms = e.at, e.w, e.ms
    if e.f then l.f = 1 end
    redis.call('LSET', timeline, -1, cjson.encode(l))
  else
    if fold ~= '' then e.k = fold end
    redis.call('RPUSH', timeline, cjson.encode(e))
    redis.call('LTRIM', timeline, -tonumber(cap), -1)
  end
  redis.call('PEXPIRE', timeline, ttl)
end
