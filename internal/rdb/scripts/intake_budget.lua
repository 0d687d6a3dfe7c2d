-- intake_budget: admits n leads of one site's batch at once, or none
-- (GCRA over n emission intervals).
-- KEYS: 1 the site's lead budget
-- ARGV: 1 now µs (-1: Redis TIME), 2 interval µs, 3 burst, 4 n
-- uses: clock, gcra, gcra_take
-- Answers: the wait in µs; 0 admitted.
local now, injected = clock(ARGV[1])
local tat, wait = gcra(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait > 0 then return wait end
gcra_take(KEYS[1], now, tat, injected)
return 0
