-- drop_legacy_marker: deletes the previous version's marker (JSON) if it
-- records the CRM id.
-- KEYS: 1 legacy marker
-- ARGV: 1 CRM id
-- Answers: keys deleted.
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, m = pcall(cjson.decode, v)
if ok and type(m) == 'table' and tonumber(m['crm_id']) == tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0
