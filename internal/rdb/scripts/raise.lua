-- raise: raises a hash field to a value if it is lower (the fleet's top
-- CRM id).
-- KEYS: 1 hash
-- ARGV: 1 field, 2 value
-- uses: raise
-- Answers: 1.
return raise(KEYS[1], ARGV[1], ARGV[2])
