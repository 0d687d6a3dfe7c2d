-- claim(bucket, legacy, crmID, lead, ttl): claims a CRM id for a lead,
-- answering the lead that holds it (this one when it won, or held it
-- already). A claim the version before wrote (its own key, legacy) counts
-- where that key can be read.
local function claim(bucket, legacy, crmID, lead, ttl)
  local v = redis.call('HGET', bucket, crmID) or (legacy and redis.call('GET', legacy))
  if v then return v end
  redis.call('HSET', bucket, crmID, lead)
  redis.call('PEXPIRE', bucket, ttl)
  return lead
end
