-- drop_marker: deletes a delivered marker if it still holds exactly the
-- delivery read.
-- KEYS: 1 delivered marker
-- ARGV: 1 the marker as read
-- Answers: keys deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
