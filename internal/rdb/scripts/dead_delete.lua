-- dead_delete: removes dead leads' records and their index entries. A
-- record names its site and queue, whose indexes are built here from
-- their prefixes (all under the tag {dead}, so in the script's slot).
-- KEYS: 1 index
-- ARGV: 1 record prefix, 2 site index prefix, 3 queue index prefix, then
--   the lead ids
-- Answers: records deleted.
local n = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  local k = ARGV[1] .. id
  local v = redis.call('HMGET', k, 'site', 'queue')
  if v[1] then
    redis.call('ZREM', ARGV[2] .. v[1], id)
    redis.call('ZREM', ARGV[3] .. (v[2] or ''), id)
    redis.call('DEL', k)
    n = n + 1
  end
  redis.call('ZREM', KEYS[1], id)
end
return n
