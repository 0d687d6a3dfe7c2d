-- next_work: how long until an idle worker of a queue has work: a pending
-- task (now), a scheduled or retry task falling due, an active task whose
-- lease expired (asynq's recoverer takes it lease_grace after its expiry)
-- or a completed task past its retention (asynq's janitor deletes it;
-- cleanup_grace lets such deletions wait and come in batches).
-- KEYS: 1 pending, 2 scheduled, 3 retry, 4 lease, 5 completed (asynq's keys of the queue)
-- ARGV: 1 now ms, 2 lease_grace ms, 3 cleanup_grace ms
-- Answers: ms until the first work is due (0: now), or -1: none is known.
if redis.call('LLEN', KEYS[1]) > 0 then
  return 0
end
local now, best = tonumber(ARGV[1]), -1
-- asynq scores these sets in Unix seconds.
local sets = {{KEYS[2], 0}, {KEYS[3], 0}, {KEYS[4], tonumber(ARGV[2])}, {KEYS[5], tonumber(ARGV[3])}}
for _, s in ipairs(sets) do
  local first = redis.call('ZRANGE', s[1], 0, 0, 'WITHSCORES')
  if first[2] then
    local due = math.max(tonumber(first[2]) * 1000 + s[2] - now, 0)
    if best < 0 or due < best then
      best = due
    end
    if best == 0 then
      return 0
    end
  end
end
return best
