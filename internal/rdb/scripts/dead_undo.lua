-- dead_undo: takes back a dead lead's record that its writer found it
-- should not have written (deadletter.Store.PutWhile), only if the record
-- is still what it wrote: a record merged since is left.
-- KEYS: 1 record, 2 index
-- ARGV: 1 lead id, 2 the record written, 3 site index prefix, 4 queue
--   index prefix
-- Answers: 1 taken back, 0 changed meanwhile (or gone).
if (redis.call('HGET', KEYS[1], 'rec') or '') ~= ARGV[2] then return 0 end
local v = redis.call('HMGET', KEYS[1], 'site', 'queue')
redis.call('ZREM', ARGV[3] .. (v[1] or ''), ARGV[1])
redis.call('ZREM', ARGV[4] .. (v[2] or ''), ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
