-- intake_allow: decides one intake request for every intake process; a
-- refusal consumes nothing. A failed authentication (ARGV[2] = 0) takes a
-- token from the client's bucket. An authenticated request never looks at
-- that bucket: many clients share an address (a NAT, a proxy not listed
-- as trusted), and one of them sending bad keys must not lock the others
-- out. Keys of at least 16 random characters are not found by guessing at
-- any rate; the bucket keeps a guesser from costing more than a 429. An
-- authenticated request takes a token from the site's and the global
-- bucket, both or neither.
-- KEYS: 1 client bucket, 2 site bucket, 3 global bucket
-- ARGV: 1 now µs (-1: Redis TIME), 2 authenticated (1/0), then the
--   emission interval µs (0: off) and burst of 3-4 the client, 5-6 the
--   site, 7-8 all sites
-- uses: clock, gcra, gcra_take
-- Answers: {code, wait µs}: 0 allowed, 1 client, 2 site, 3 global.
local now, injected = clock(ARGV[1])
local civ, cb = tonumber(ARGV[3]), tonumber(ARGV[4])
local siv, sb = tonumber(ARGV[5]), tonumber(ARGV[6])
local giv, gb = tonumber(ARGV[7]), tonumber(ARGV[8])
if ARGV[2] == '0' then
  if civ > 0 then
    local tat, wait = gcra(KEYS[1], now, civ, cb, 1)
    if wait > 0 then return {1, wait} end
    gcra_take(KEYS[1], now, tat, injected)
  end
  return {0, 0}
end
local stat, gtat = 0, 0
if siv > 0 then
  local wait
  stat, wait = gcra(KEYS[2], now, siv, sb, 1)
  if wait > 0 then return {2, wait} end
end
if giv > 0 then
  local wait
  gtat, wait = gcra(KEYS[3], now, giv, gb, 1)
  if wait > 0 then return {3, wait} end
end
if siv > 0 then gcra_take(KEYS[2], now, stat, injected) end
if giv > 0 then gcra_take(KEYS[3], now, gtat, injected) end
return {0, 0}
