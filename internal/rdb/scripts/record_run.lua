-- record_run: appends a run to the lead's timeline (record_run). A run's
-- entry is a fact, like a delivered marker: it is written whether or not
-- the run still holds the lead (holds), marked fenced when another run
-- took the lead over, whose entries it leaves alone. A delivered run's
-- entry is written by Finish instead (finish_all, finish).
-- KEYS: 1 timeline, 2 lock, 3 attempt record
-- ARGV: 1 token, 2 entry (JSON), 3 fold key ('' never folds), 4 cap,
--       5 ttl ms
-- uses: holds, record_run
-- Answers: 1 written while the run held the lead, 0 written as fenced.
local held = holds(KEYS[2], KEYS[3], ARGV[1])
record_run(KEYS[1], held, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
if held then return 1 end
return 0
