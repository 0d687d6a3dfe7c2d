-- admit_keyless: a keyless lead's identity and its admission in one step
-- (a single primary): the keyless record (lib/keyless.lua) and, when this
-- submission opened it (the identity is the fresh one the caller named
-- and built the lead under), reserve.lua's admission of that lead. A
-- repeat within the window is answered with its identity and nothing is
-- counted: the caller builds the lead under that identity and admits it
-- (reserve).
-- KEYS: 1-7 as reserve.lua's on a single primary (7: the fresh lead's
--   delivered marker), 8 keyless record
-- ARGV: 1-8 as reserve.lua's, 9 the fresh identity, 10 window ms
-- uses: keyless, reserve
-- Answers: {repeats, identity, reserve's answer...}; with repeats > 0,
-- only the first two.
local id, n = keyless(KEYS[8], ARGV[9], ARGV[10])
if id ~= ARGV[9] then return {n, id} end
local r = reserve(KEYS, ARGV)
table.insert(r, 1, id)
table.insert(r, 1, n)
return r
