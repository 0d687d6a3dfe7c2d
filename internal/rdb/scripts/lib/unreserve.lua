-- unreserve(backlog, site): takes one lead out of a site's backlog count,
-- never below zero (a lead enqueued by the previous version, or requeued
-- by hand, was never counted). Answers the count before.
local function unreserve(backlog, site)
  local n = tonumber(redis.call('HGET', backlog, site) or '0')
  if n <= 1 then redis.call('HDEL', backlog, site) else redis.call('HINCRBY', backlog, site, -1) end
  return n
end
