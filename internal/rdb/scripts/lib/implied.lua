-- implied(timeline, held, plain): whether a delivering run's timeline
-- entry goes unwritten because the delivered marker implies it: the run
-- held the lead, made one add and no look-up (plain = '1', said by the
-- caller), and the lead has no timeline yet (no run before it). Runs then
-- reads the entry back from the marker; a lead delivered at its first run,
-- most of them, keeps no list (~300 B).
local function implied(timeline, held, plain)
  return plain == '1' and held and redis.call('EXISTS', timeline) == 0
end
