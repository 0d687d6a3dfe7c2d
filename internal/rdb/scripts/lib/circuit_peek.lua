-- circuit_peek(breaker, now): the CRM circuit, unchanged. Answers {wait ms, probe
-- (1 due, 2 one in flight, 0 neither), exists (1/0), problem, problem at ms}.
local function circuit_peek(breaker, nowArg)
  if redis.call('EXISTS', breaker) == 0 then return {'0', '0', '0', '', ''} end
  local h = redis.call('HMGET', breaker, 'open_until', 'probe_until', 'problem', 'problem_at')
  local now = tonumber(nowArg)
  local ou = tonumber(h[1] or '0')
  local pu = tonumber(h[2] or '0')
  local wait, due = 0, 0
  if ou > 0 then
    if now < ou then wait = ou - now
    elseif now < pu then wait, due = pu - now, 2
    else due = 1 end
  end
  return {tostring(wait), tostring(due), '1', h[3] or '', h[4] or ''}
end
