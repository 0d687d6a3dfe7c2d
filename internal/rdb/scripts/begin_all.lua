-- begin_all: the whole of Begin on a single primary, where every key is
-- on one node: the lead's begin (with the previous version's marker), the
-- circuit, and the v1 journal's counters or v2's top id.
-- KEYS: 1 delivered marker, 2 lock, 3 attempt record, 4 legacy marker,
--   5 breaker, 6 journal meta, 7 fleet epoch, 8 rollback
-- ARGV: 1 token, 2 lock ttl ms, 3 now ms, 4 record ttl ms, 5 watermark,
--   6 count send (1/0), 7 read top (1/0)
-- uses: begin, circuit_peek
-- Answers: begin's answer padded to 8, the circuit's 5 fields, then seq,
-- from, max, seen (with count send) and crm_top (with read top), empty
-- when not read, then the fleet epoch and the rollback's time ('' when
-- none).
local out = begin(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
for i = #out + 1, 8 do out[i] = '' end
for _, v in ipairs(circuit_peek(KEYS[5], ARGV[3])) do out[#out + 1] = v end
local j = {'', '', '', ''}
if ARGV[6] == '1' then
  j[1] = tostring(redis.call('HINCRBY', KEYS[6], 'seq', 1))
  local f = redis.call('HMGET', KEYS[6], 'from', 'max', 'seen')
  j[2], j[3], j[4] = f[1] or '', f[2] or '', f[3] or ''
end
for _, v in ipairs(j) do out[#out + 1] = v end
local top = ''
if ARGV[7] == '1' then top = redis.call('HGET', KEYS[6], 'crm_top') or '' end
out[#out + 1] = top
local fleet = redis.call('MGET', KEYS[7], KEYS[8])
out[#out + 1] = fleet[1] or ''
out[#out + 1] = fleet[2] or ''
return out
