-- mark_sending: writes the attempt record ahead of an add sent after a
-- look-up found nothing, unless the lead was delivered meanwhile or this
-- run no longer holds it (holds): then it must not send.
-- KEYS: 1 delivered marker, 2 attempt record, 3 lock
-- ARGV: 1 now ms, 2 record ttl ms, 3 watermark, 4 the run's token
-- uses: holds
-- Answers: {'delivered', marker}, {'fenced'} or {'sending'}.
local m = redis.call('GET', KEYS[1])
if m then return {'delivered', m} end
if not holds(KEYS[3], KEYS[2], ARGV[4]) then return {'fenced'} end
redis.call('HSETNX', KEYS[2], 'first_at', ARGV[1])
redis.call('HSETNX', KEYS[2], 'w', ARGV[3])
redis.call('HSET', KEYS[2], 'state', 'sending', 'sent_at', ARGV[1], 'prev', 'failed')
redis.call('HINCRBY', KEYS[2], 'sends', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {'sending'}
