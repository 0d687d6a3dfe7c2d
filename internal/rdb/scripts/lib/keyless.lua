-- keyless(record, fresh, window): the identity of a lead sent without an
-- idempotency key, kept in its keyless record: the first submission opens
-- the window (window ms) under identity fresh; the same content within the
-- window is a repeat, counted. Answers the identity and the repeats so
-- far (0 for the first).
local function keyless(record, fresh, window)
  local id = redis.call('HGET', record, 'id')
  if id then
    return id, redis.call('HINCRBY', record, 'repeats', 1)
  end
  redis.call('HSET', record, 'id', fresh, 'repeats', 0)
  redis.call('PEXPIRE', record, window)
  return fresh, 0
end
