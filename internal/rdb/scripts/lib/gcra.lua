-- gcra(key, now, iv, burst, n): the generic cell rate algorithm's answer
-- for n requests at now (µs) against the theoretical arrival time kept in
-- key, one request each iv µs with bursts of burst. Answers the new
-- arrival time and the wait in µs (0: allowed); it writes nothing, so a
-- script checks every bucket before it takes from any (gcra_take).
local function gcra(key, now, iv, burst, n)
  local tat = math.max(tonumber(redis.call('GET', key) or '0'), now) + n * iv
  local allowAt = tat - burst * iv
  if now < allowAt then return tat, allowAt - now end
  return tat, 0
end
