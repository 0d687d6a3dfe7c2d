-- keyless: the identity of a lead sent without an idempotency key, whose
-- content digest is all that names it. The first submission opens its
-- window and names the identity; the same content within the window is
-- a repeat (a double submit) and gets that identity, counted; after the
-- window the same content is a new lead.
-- KEYS: 1 keyless record
-- ARGV: 1 the identity, if new; 2 window ms
-- Answers: {identity, repeats within the window so far}.
local id = redis.call('HGET', KEYS[1], 'id')
if id then
  return {id, redis.call('HINCRBY', KEYS[1], 'repeats', 1)}
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'repeats', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {ARGV[1], 0}
