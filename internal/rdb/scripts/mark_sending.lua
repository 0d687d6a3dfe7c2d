-- mark_sending: writes the attempt record ahead of an add sent after a
-- look-up found nothing, unless the lead was delivered meanwhile.
-- KEYS: 1 delivered marker, 2 attempt record
-- ARGV: 1 now ms, 2 record ttl ms, 3 watermark
-- Answers: the marker when there is one, else false (nil).
local m = redis.call('GET', KEYS[1])
if m then return m end
redis.call('HSETNX', KEYS[2], 'first_at', ARGV[1])
redis.call('HSETNX', KEYS[2], 'w', ARGV[3])
redis.call('HSET', KEYS[2], 'state', 'sending', 'sent_at', ARGV[1], 'prev', 'failed')
redis.call('HINCRBY', KEYS[2], 'sends', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return false
