-- crm_release: frees a slot and, with adaptive concurrency, feeds the
-- request to the fleet's limit: a hill climb on goodput, the CRM requests
-- the whole fleet completes per second (worker.WithAdaptiveConcurrency).
--
-- The limit is a whole number of slots. Each level is measured for an
-- epoch: it starts at the first completion of a request admitted at that
-- level (so the ramp from the level before is not counted), and ends after
-- at least 20 completions and max(1 s, 4× the smoothed latency), or after
-- 3 s whatever the count. An epoch whose releases mostly found free slots
-- measured the demand, not the CRM: it gives no verdict; nor does one
-- below the peak whose releases found free slots a tenth of the time or
-- more (the demand fell during it: a burst ending in light load). Otherwise
-- its goodput is compared with peak, the best goodput and the level it was
-- measured at (peak_lvl):
--
--   - at peak_lvl (or with no peak yet): the peak is re-measured (smoothed
--     1/2) and the limit tries one more;
--   - at least 5% above the peak: a new peak; one more;
--   - below peak_lvl (after a cut): one more, up to the peak again;
--   - below good, the best level before the last cut, when the epoch was
--     at peak_lvl or a new peak: twice the limit, up to good. A cut
--     forgets the peak but not good, so a fleet that an outage took to 1
--     is back where the CRM coped in a few epochs (1, 2, 4, 8), where
--     one more an epoch took 15 s to reach 8 while 5,000 leads waited;
--   - under 0.8× the peak: the level is measured once more; under 0.8×
--     the peak again, it is past the knee: back to peak_lvl, and the level
--     is a knee for the knee time (not bad: on a shared host the CRM's
--     goodput halves when a neighbour takes the CPU, so a fall alone is
--     not proof of a cliff). One slow epoch is no proof either: after an
--     outage the climb restarts from 1 while the CRM still serves what
--     queued during it, and one such epoch at 2 held the real CRM's fleet
--     at 1 for the knee time;
--   - in between: one more, up to twice peak_lvl (and at least 3 more),
--     where the climb is tested. At least 3% above the peak there is a
--     gentle slope: the level is measured once more (rise), and if 3% up
--     again it is a new peak and the climb goes on. Less is a plateau:
--     back to peak_lvl with a knee just above it, so a CRM whose goodput
--     is flat keeps its latency low. crmsim's PHP pool of 32 gives 89
--     adds/s at 3, then about 1% more a level to 98 at 16: 3 to 6 gains
--     under 5%, and going back at 6 held the bench's drain at 3 (0.896
--     of the best, issue 20). The test needs 3%, twice, because an
--     epoch's goodput wanders by a few percent on a shared host and
--     noise read as a slope only ratchets up (peak_lvl comes down only
--     with a cut): on a flat CRM with epochs ±2-5% noisy, one epoch at
--     2% took the limit from 4 to the cap (32) in 3 of 9 simulated
--     10 minutes; twice 3% ended no higher than the 5% rule alone (at
--     most 8, where that ended at up to 12).
--
-- A failed answer (a 5xx or a dropped connection, quick) counts in the
-- epoch but not in its goodput: a flaky proxy failing a steady share of
-- calls at every level costs goodput at every level alike, so the climb
-- still finds the knee, where cutting on each one pinned the limit at 1
-- (issue 20: 20% random 503 gave 176 cuts in 3 simulated minutes and
-- 5 calls/s of a pool's 40). An epoch where most calls failed cuts, as
-- an overloaded outcome does, but marks no level bad: it is a CRM that is
-- down, since at the climb's edge (one more than a level that worked) a
-- CRM that refuses what it cannot take fails about one call in the limit,
-- never most. Its mark held a fleet restarted in an outage one slot below
-- its knee for 5 minutes after it (the real CRM drained at 3 of its 4).
--
-- Latency rising with the limit is no signal by itself: a CPU-bound CRM
-- serves more, more slowly, as it gets more processes. Two shortcuts do
-- not wait for the epoch: a request admitted above peak_lvl that took over
-- 8× the latency the peak's goodput implies (limit/peak, Little's law) is
-- a collapse, as a PHP CRM gives past its pool (its webhook call stalls
-- 5 s): back to peak_lvl, and the level is bad for the probe-after time;
-- an overloaded outcome (a timeout or 429) cuts the limit
-- to 0.8× (at least one less, at least 1) at most once per round trip
-- (a request admitted before the last cut does not cut again), forgets the
-- peak, and marks the level bad unless a mark is in force (so an outage
-- does not pin the fleet at 1) or it is the starting limit (which a CRM
-- still busy with someone else's burst gives). The limit never exceeds the
-- cap, nor reaches a bad or knee level.
--
-- State (KEYS[2]): limit; avg (smoothed latency, weight 1/4,
-- which paces the waiters); drop (last cut); bad, bad_at; knee, knee_at;
-- epoch (when the level began), t0, n, full, fails (the epoch's start,
-- its completions, those that found the slots in use, those that
-- failed); peak, peak_lvl; good (peak_lvl before the last cut); dip (a
-- level whose last epoch fell under 0.8× the peak, measured again); rise
-- (a level whose climb test gained 3%, measured again); goodput (the last
-- epoch's).
-- KEYS: 1 inflight, 2 adaptive state
-- ARGV: 1 token, 2 admitted at µs, 3 outcome (0 answered, 1 overloaded,
--   2 no signal, 3 failed), 4 now µs (-1: Redis TIME), 5 cap, 6 adaptive (1/0),
--   7 starting limit, 8 state ttl ms, 9 probe-after µs, 10 knee-after µs
-- uses: clock
-- Answers: {limit (-1 without adaptation), verdict (0 none, 1 cut,
-- 2 collapse, 3 epoch measured, 4 knee), the epoch's goodput ×1000}.
local now = clock(ARGV[4])
local inflight = redis.call('ZCARD', KEYS[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[6] ~= '1' or ARGV[3] == '2' then return {-1, 0, 0} end
local start = tonumber(ARGV[2])
local rtt = math.max(now - start, 1)
local cap = tonumber(ARGV[5])
local first = tonumber(ARGV[7])
local st = redis.call('HMGET', KEYS[2], 'limit', 'avg', 'drop', 'bad', 'bad_at', 'knee', 'knee_at',
  'epoch', 't0', 'n', 'full', 'peak', 'peak_lvl', 'fails', 'dip', 'good', 'rise')
local limit = math.max(1, math.min(cap, math.floor(tonumber(st[1] or first))))
local avg = tonumber(st[2] or rtt)
local drop = tonumber(st[3] or '0')
local bad, badAt = tonumber(st[4] or '0'), tonumber(st[5] or '0')
local knee, kneeAt = tonumber(st[6] or '0'), tonumber(st[7] or '0')
local epoch, t0 = tonumber(st[8] or '0'), tonumber(st[9] or '0')
local n, full = tonumber(st[10] or '0'), tonumber(st[11] or '0')
local peak, peakLvl = tonumber(st[12] or '0'), tonumber(st[13] or '0')
local fails = tonumber(st[14] or '0')
local dip, dipped = tonumber(st[15] or '0'), false
local good = tonumber(st[16] or '0')
local rise, rose = tonumber(st[17] or '0'), false
local failed = ARGV[3] == '3'
if not failed then avg = avg + (rtt - avg) * 0.25 end
if bad > 0 and now - badAt > tonumber(ARGV[9]) then bad = 0 end
if knee > 0 and now - kneeAt > tonumber(ARGV[10]) then knee = 0 end
local nextLimit, verdict, rate = limit, 0, 0
local function cut(mark)
  if mark and bad == 0 and limit > first then bad, badAt = limit, now end
  nextLimit = math.max(1, math.floor(limit * 0.8))
  if peakLvl > 0 then good = peakLvl end
  drop, peak, peakLvl, verdict = now, 0, 0, 1
end
if ARGV[3] == '1' then
  if start >= drop then cut(true) end
elseif start >= epoch then
  if not failed and peak > 0 and limit > peakLvl and rtt > 8000000 * limit / peak then
    if bad == 0 or limit < bad then bad, badAt = limit, now end
    nextLimit, verdict = peakLvl, 2
  elseif t0 == 0 then
    t0, n, full, fails = now, 0, 0, 0
  else
    n = n + 1
    -- One free slot still counts as full from 3 up (a worker retakes a
    -- freed slot a moment later), never at 1-2, where it made a lone
    -- request look like demand: light load then "measured" level 2 below
    -- a burst's goodput at 1, and the knee pinned the fleet at 1.
    if inflight >= limit or (limit > 2 and inflight + 1 >= limit) then full = full + 1 end
    if failed then fails = fails + 1 end
    local elapsed = now - t0
    if elapsed >= 3000000 or (n >= 20 and elapsed >= math.max(1000000, 4 * avg)) then
      if fails * 2 > n then
        cut(false)
      elseif full * 2 < n then
        t0, n, full, fails = now, 0, 0, 0
      else
        rate = (n - fails) * 1000000 / elapsed
        verdict = 3
        if peak == 0 or limit == peakLvl then
          if peak == 0 then peak = rate else peak = peak + (rate - peak) * 0.5 end
          peakLvl, nextLimit = limit, limit + 1
          if limit < good then nextLimit = math.min(good, 2 * limit) end
        elseif rate >= peak * 1.05 then
          peak, peakLvl, nextLimit = rate, limit, limit + 1
          if limit < good then nextLimit = math.min(good, 2 * limit) end
        elseif limit < peakLvl then
          nextLimit = limit + 1
        elseif full * 10 < n * 9 and rate < peak then
          -- Under peak with free slots at some releases: the demand fell
          -- during the epoch (a burst ending in light load), so the rate
          -- is the demand's, no knee: measure again.
          t0, n, full, fails, rate, verdict = now, 0, 0, 0, 0, 0
        elseif rate < peak * 0.8 and dip ~= limit then
          dip, dipped = limit, true -- measure this level again
        elseif rate < peak * 0.8 then
          knee, kneeAt, nextLimit, verdict = limit, now, peakLvl, 4
        elseif limit >= math.max(peakLvl + 3, 2 * peakLvl) and rate >= peak * 1.03 and rise ~= limit then
          rise, rose = limit, true -- a gentle slope, or noise: measure this level again
        elseif limit >= math.max(peakLvl + 3, 2 * peakLvl) and rate >= peak * 1.03 then
          peak, peakLvl, nextLimit = rate, limit, limit + 1
          if limit < good then nextLimit = math.min(good, 2 * limit) end
        elseif limit >= math.max(peakLvl + 3, 2 * peakLvl) then
          knee, kneeAt, nextLimit, verdict = peakLvl + 1, now, peakLvl, 4
        else
          nextLimit = limit + 1
        end
      end
    end
  end
end
if verdict > 0 then
  if not dipped then dip = 0 end
  if not rose then rise = 0 end
  local top = cap
  if bad > 0 then top = math.min(top, bad - 1) end
  if knee > 0 then top = math.min(top, knee - 1) end
  nextLimit = math.max(1, math.min(top, nextLimit))
  if nextLimit ~= limit or verdict ~= 3 then epoch = now end
  t0, n, full, fails = 0, 0, 0, 0
  if nextLimit == limit and verdict == 3 then t0 = now end
  limit = nextLimit
end
redis.call('HSET', KEYS[2], 'limit', limit, 'avg', string.format('%.0f', avg), 'drop', string.format('%.0f', drop),
  'bad', bad, 'bad_at', string.format('%.0f', badAt), 'knee', knee, 'knee_at', string.format('%.0f', kneeAt),
  'epoch', string.format('%.0f', epoch), 't0', string.format('%.0f', t0), 'n', n, 'full', full, 'fails', fails,
  'peak', string.format('%.3f', peak), 'peak_lvl', peakLvl, 'dip', dip, 'good', good, 'rise', rise)
if verdict == 3 then redis.call('HSET', KEYS[2], 'goodput', string.format('%.3f', rate)) end
redis.call('PEXPIRE', KEYS[2], ARGV[8])
return {limit, verdict, math.floor(rate * 1000)}
