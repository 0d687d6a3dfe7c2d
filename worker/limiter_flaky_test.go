package worker

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/internal/testclock"
	"leadrelay/lead"
)

// flakyCRM is a simulator behind a flaky proxy: every CRM call of the
// closed loop goes to it, and its answer, read by crmOutcome as the
// Handler reads it, is what the limiter learns. The latency stays the
// loop's shape, so the simulated clock keeps the test quick and exact.
type flakyCRM struct {
	sim    *crmsim.Sim
	client *crmclient.Client
	ok     int             // answered calls
	ctx    context.Context // the test's
}

// poolOf8 is a CRM with a pool of 8 PHP workers: 200 ms an add up to 8
// in flight (latency flat, goodput 5 adds/s a worker), a 5 s stall past.
var poolOf8 = phpCRM(func(n int) float64 { return 5 * float64(n) }, 9, 5*time.Second)

func startFlakyCRM(t *testing.T, f crmsim.Faults) *flakyCRM {
	t.Helper()
	const apiKey = "flaky-test-key"
	sim, client := startSim(t, crmsim.Config{APIKey: apiKey, API: "v2", Seed: 7, Faults: f})
	return &flakyCRM{sim: sim, client: client, ctx: t.Context()}
}

// call adds one lead and says how it went.
func (c *flakyCRM) call() CRMOutcome {
	_, err := c.client.Add(c.ctx, crmclient.Lead{Lead: lead.Lead{Title: "flaky proxy", Email: "a@example.com"}})
	out := crmOutcome(c.ctx, err)
	if out == CRMAnswered {
		c.ok++
	}
	return out
}

// lightLoad sends n lone requests, one at a time, rtt each, with random
// gaps of up to 2×gap between them: a fleet with little to do.
func lightLoad(t *testing.T, ls []*redisLimiter, clock *testclock.Clock, n int, rtt, gap time.Duration, out func() CRMOutcome) {
	ctx := t.Context()
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		done, err := ls[i%len(ls)].AcquireFeedback(ctx)
		if err != nil {
			t.Fatalf("a lone request refused: %v", err)
		}
		clock.Advance(rtt)
		done(out())
		clock.Advance(time.Duration(rnd.Int64N(int64(2 * gap))))
	}
}

// TestAdaptiveFlakyCRM: 5xx that do not come from overload (a flaky proxy
// answering 20% of the calls with 503 while latency stays flat and the
// pool has room) must not pin the limit at 1, and after an outage the
// limit climbs back to the knee once there is work again (issue 20).
func TestAdaptiveFlakyCRM(t *testing.T) {
	t.Parallel()
	flaky := crmsim.Faults{ErrorRate: 0.2, ErrorStatus: 503, PHPWorkers: 8}
	t.Run("20% random 503 keep the limit near the pool", func(t *testing.T) {
		t.Parallel()
		crm := startFlakyCRM(t, flaky)
		ls, clock, log := adaptiveFleet(t, 2, 32)
		const run, tail = 3 * time.Minute, time.Minute
		res := closedLoopOf(t, ls, clock, poolOf8, run, tail, crm.call)
		limit := int(limitOf(t, ls[0]))
		t.Logf("limit %d, %d cuts, %d of %d calls answered, tail %.1f calls/s, peak %d in flight",
			limit, log.count(AdaptiveCut), crm.ok, len(res.ends), res.tailRate, res.peak)
		if limit < 6 || limit > 8 {
			t.Errorf("limit after %s of 20%% random 503 = %d, want 6..8 (the pool of 8)", run, limit)
		}
		if best, _ := bestGoodput(poolOf8, 32); res.tailRate < 0.75*best {
			t.Errorf("calls over the last %s %.1f/s, want at least 0.75× the pool's %.1f/s", tail, res.tailRate, best)
		}
		if res.peak > 9 {
			t.Errorf("%d in flight at once, want at most 9: the pool's cliff", res.peak)
		}
	})
	t.Run("after an outage and a quiet spell the limit climbs back", func(t *testing.T) {
		t.Parallel()
		crm := startFlakyCRM(t, crmsim.Faults{PHPWorkers: 8})
		ls, clock, _ := adaptiveFleet(t, 2, 32)
		closedLoopOf(t, ls, clock, poolOf8, time.Minute, time.Second, crm.call)
		before := int(limitOf(t, ls[0]))
		crm.sim.SetFaults(crmsim.Faults{PHPWorkers: 8, Outage: &crmsim.Outage{Mode: crmsim.OutageHTTP503}})
		fast := func(int) time.Duration { return 5 * time.Millisecond } // a 503 comes back at once
		closedLoopOf(t, ls, clock, fast, 30*time.Second, time.Second, crm.call)
		during := int(limitOf(t, ls[0]))
		crm.sim.SetFaults(crmsim.Faults{PHPWorkers: 8})
		lightLoad(t, ls, clock, 600, 200*time.Millisecond, 300*time.Millisecond, crm.call)
		quiet := int(limitOf(t, ls[0]))
		res := closedLoopOf(t, ls, clock, poolOf8, 40*time.Second, 10*time.Second, crm.call)
		after := int(limitOf(t, ls[0]))
		t.Logf("limit %d before the outage, %d at its end, %d after the quiet spell, %d after 40 s of backlog (tail %.1f/s)",
			before, during, quiet, after, res.tailRate)
		if after < 6 {
			t.Errorf("limit after 40 s of backlog = %d, want at least 6: it climbs back towards the pool of 8", after)
		}
	})
	t.Run("light load after an outage does not pin the limit at 1", func(t *testing.T) {
		// Once the CRM is back, the leads the outage postponed come in a
		// burst at limit 1, then the fleet has little to do. Before the
		// fix, a lone request counted as demand at limits 1 and 2, so the
		// light load "measured" level 2 below the burst's goodput at 1: a
		// knee at 2, the fleet pinned at 1 for a minute, and a backlog
		// arriving in that minute drained one lead at a time.
		t.Parallel()
		ls, clock, log := adaptiveFleet(t, 2, 32)
		fast := func(int) time.Duration { return 5 * time.Millisecond } // a 503 comes back at once
		closedLoop(t, ls, clock, poolOf8, time.Minute, time.Second, CRMAnswered)
		closedLoop(t, ls, clock, fast, 30*time.Second, time.Second, CRMFailed)
		closedLoop(t, ls, clock, poolOf8, 3*time.Second, time.Second, CRMAnswered)
		knees := log.count(AdaptiveKnee)
		answered := func() CRMOutcome { return CRMAnswered }
		lightLoad(t, ls, clock, 60, 200*time.Millisecond, 300*time.Millisecond, answered)
		quiet := int(limitOf(t, ls[0]))
		res := closedLoop(t, ls, clock, poolOf8, 20*time.Second, 5*time.Second, CRMAnswered)
		after := int(limitOf(t, ls[0]))
		t.Logf("limit %d after the light load (%d knees in it), %d after 20 s of backlog (tail %.1f/s)",
			quiet, log.count(AdaptiveKnee)-knees, after, res.tailRate)
		if got := log.count(AdaptiveKnee) - knees; got > 0 {
			t.Errorf("%d knee verdicts under light load, want none: lone requests measure the demand, not the CRM", got)
		}
		if quiet < 2 {
			t.Errorf("limit after the light load = %d, want at least 2", quiet)
		}
		if after < 6 {
			t.Errorf("limit after 20 s of backlog = %d, want at least 6: it climbs towards the pool of 8", after)
		}
	})
}
