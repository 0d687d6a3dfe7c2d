-- crm_pause: holds every worker back until now + d (the CRM said
-- Retry-After), unless a longer pause is in force.
-- KEYS: 1 pause
-- ARGV: 1 now µs (-1: Redis TIME), 2 d µs
-- uses: clock
-- Answers: 1.
local now = clock(ARGV[1])
local d = tonumber(ARGV[2])
local upto = now + d
if upto > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', upto), 'PX', string.format('%.0f', math.ceil(d / 1000) + 1))
end
return 1
