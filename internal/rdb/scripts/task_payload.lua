-- task_payload: replaces a task's encoded message (asynq's "msg" field)
-- with one that differs only in its payload, unless the task changed
-- since it was read or a worker holds it.
-- KEYS: 1 asynq's task hash (AsynqTaskKey)
-- ARGV: 1 the message as read, 2 the new message
-- Answers: 1 replaced; 0 the task changed or is gone; -1 it is active (a
-- worker holds it and would write its own copy back).
local t = redis.call('HMGET', KEYS[1], 'state', 'msg')
if t[1] == 'active' then
  return -1
end
if t[2] ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'msg', ARGV[2])
return 1
