-- keyless: the identity of a lead sent without an idempotency key, whose
-- content digest is all that names it. The first submission opens its
-- window and names the identity; the same content within the window is
-- a repeat (a double submit) and gets that identity, counted; after the
-- window the same content is a new lead.
-- KEYS: 1 keyless record
-- ARGV: 1 the identity, if new; 2 window ms
-- uses: keyless
-- Answers: {identity, repeats within the window so far}.
local id, n = keyless(KEYS[1], ARGV[1], ARGV[2])
return {id, n}
