-- clock(arg): the time in µs: arg, or Redis TIME when arg is negative, so
-- a fleet keeps one clock whatever its hosts' clocks say; and whether the
-- time was injected (tests inject theirs, which does not run with
-- Redis's: a key that should expire when that time passes keeps a slack).
local function clock(arg)
  local now = tonumber(arg)
  if now < 0 then
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000000 + tonumber(t[2]), false
  end
  return now, true
end
