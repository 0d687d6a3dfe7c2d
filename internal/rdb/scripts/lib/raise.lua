-- raise(hash, field, value): raises a hash field to value if it is lower.
local function raise(hash, field, value)
  if tonumber(redis.call('HGET', hash, field) or '0') < tonumber(value) then
    redis.call('HSET', hash, field, value)
  end
  return 1
end
