-- keyless_legacy: names a keyless record's lead by the identity an intake
-- of the version before keyed ids gave the same content (its plain
-- digest), when admit_keyless opened the record under a fresh identity
-- and the producer then found that older lead recent: later repeats
-- within the window are that lead too. A record that names another
-- identity already (a repeat of another kind) is left alone.
-- KEYS: 1 keyless record
-- ARGV: 1 the fresh identity it was opened under, 2 the legacy identity
-- Answers: the identity the record names now.
local id = redis.call('HGET', KEYS[1], 'id')
if id == ARGV[1] then
  redis.call('HSET', KEYS[1], 'id', ARGV[2])
  return ARGV[2]
end
return id or ARGV[2]
