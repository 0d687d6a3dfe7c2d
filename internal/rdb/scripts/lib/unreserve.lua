-- unreserve(backlog, site): takes one lead out of a site's backlog count,
-- never below zero (a lead enqueued by the previous version, or requeued
-- by hand, was never counted): a count it takes to zero or below goes.
-- Answers the count before.
local function unreserve(backlog, site)
  local n = redis.call('HINCRBY', backlog, site, -1)
  if n <= 0 then redis.call('HDEL', backlog, site) end
  return n + 1
end
