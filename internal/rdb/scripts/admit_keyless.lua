-- admit_keyless: a keyless lead's identity and its admission in one step
-- (a single primary): the keyless record (lib/keyless.lua) and, when this
-- submission opened it (the identity is the fresh one the caller named
-- and built the lead under), reserve.lua's admission of that lead. A
-- repeat within the window is answered with its identity and nothing is
-- counted: the caller builds the lead under that identity and admits it
-- (reserve). With a legacy lead to look at (the id the version before
-- keyed ids gave the same content), the first submission's answer carries
-- what Redis holds of it, for the caller to tell whether it is the same
-- lead (Store.Known's reads, here so that the call is one script that
-- the store's group can carry with others).
-- KEYS: 1-7 as reserve.lua's on a single primary (7: the fresh lead's
--   delivered marker), 8 keyless record; optional, the legacy lead's:
--   9 asynq task, 10 delivered marker, 11 delivered marker under the
--   previous version's key
-- ARGV: 1-8 as reserve.lua's, 9 the fresh identity, 10 window ms
-- uses: keyless, reserve
-- Answers: {repeats, identity} for a repeat; else {repeats, identity,
-- legacy task's msg, legacy marker, legacy marker under the old key (each
-- nil when absent or without KEYS 9-11), reserve's answer...}.
local id, n = keyless(KEYS[8], ARGV[9], ARGV[10])
if id ~= ARGV[9] then return {n, id} end
local msg, mk, old = false, false, false
if KEYS[9] then
  msg = redis.call('HGET', KEYS[9], 'msg')
  mk = redis.call('GET', KEYS[10])
  old = redis.call('GET', KEYS[11])
end
local r = reserve(KEYS, ARGV)
return {n, id, msg, mk, old, unpack(r)}
