-- gcra_take(key, now, tat, injected): takes what gcra allowed: keeps the
-- new arrival time until it is past, on Redis's clock (1 ms after), or a
-- minute after on an injected clock, which stands still while Redis's
-- runs.
local function gcra_take(key, now, tat, injected)
  local slack = 1
  if injected then slack = 60000 end
  redis.call('SET', key, string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000) + slack))
end
