-- dead_put: writes a dead lead's record and its index entries, only if
-- the record (and, for a lead with no record, its requeue history) is
-- still what the writer read and merged: else it writes nothing, and the
-- writer reads and merges again. A history taken up by the record goes.
-- KEYS: 1 record, 2 history, 3 index, 4 site index, 5 queue index,
--   6 the site index of the record read, 7 its queue index
-- ARGV: 1 lead id, 2 site, 3 queue, 4 record (JSON), 5 death time ms,
--   6 the record read ('' none), 7 the history read ('' none), 8 history
--   read (1/0)
-- Answers: 1 written, 0 changed meanwhile.
if (redis.call('HGET', KEYS[1], 'rec') or '') ~= ARGV[6] then return 0 end
if ARGV[8] == '1' then
  if (redis.call('GET', KEYS[2]) or '') ~= ARGV[7] then return 0 end
  if ARGV[7] ~= '' then redis.call('DEL', KEYS[2]) end
end
if KEYS[6] ~= KEYS[4] then redis.call('ZREM', KEYS[6], ARGV[1]) end
if KEYS[7] ~= KEYS[5] then redis.call('ZREM', KEYS[7], ARGV[1]) end
redis.call('HSET', KEYS[1], 'site', ARGV[2], 'queue', ARGV[3], 'rec', ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
return 1
