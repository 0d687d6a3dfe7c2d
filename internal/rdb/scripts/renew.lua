-- renew: extends the lock if we still hold it.
-- KEYS: 1 lock
-- ARGV: 1 token, 2 ttl ms
-- Answers: 1 extended, 0 lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
