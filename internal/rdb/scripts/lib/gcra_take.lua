-- gcra_take(key, now, tat): takes what gcra allowed: keeps the new
-- arrival time until it is past.
local function gcra_take(key, now, tat)
  redis.call('SET', key, string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000) + 1))
end
