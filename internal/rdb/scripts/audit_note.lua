-- audit_note: records what an audit found, each find once: a find not
-- recorded before is recorded with its first sighting; every find's
-- first sighting is answered. The hash lives keep ms from the last note.
-- KEYS: 1 audit finds
-- ARGV: 1 now ms, 2 keep ms, 3.. finds (kind:id)
-- Answers: per find, its first sighting in ms, negative when this note
-- recorded it first.
local out = {}
for i = 3, #ARGV do
  local at = redis.call('HGET', KEYS[1], ARGV[i])
  if at then
    out[#out + 1] = tonumber(at)
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    out[#out + 1] = -tonumber(ARGV[1])
  end
end
if #ARGV > 2 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return out
