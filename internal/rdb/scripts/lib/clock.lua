-- clock(arg): the time in µs: arg, or Redis TIME when arg is negative, so
-- a fleet keeps one clock whatever its hosts' clocks say (tests inject
-- theirs).
local function clock(arg)
  local now = tonumber(arg)
  if now < 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return now
end
