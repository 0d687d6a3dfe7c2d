package worker

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"leadrelay/crmclient"
	"leadrelay/internal/redistest"
)

// adaptiveFleet is n limiters (n worker processes) sharing one Redis and one
// injected clock, with adaptive concurrency under a cap.
func adaptiveFleet(t *testing.T, n, limitCap int) ([]*redisLimiter, *testClock) {
	t.Helper()
	srv := redistest.Start(t)
	clock := newTestClock()
	ls := make([]*redisLimiter, n)
	for i := range ls {
		ls[i] = NewRedisLimiter(srv.Client(), 0, limitCap, time.Minute, WithAdaptiveConcurrency(true),
			WithLimiterClock(clock.Now), WithLimiterWait(0)).(*redisLimiter)
	}
	return ls, clock
}

// round admits as many requests as the fleet allows (spread over its
// limiters), lets them take rtt and releases them with out. It returns how
// many were admitted at once.
func round(t *testing.T, ls []*redisLimiter, clock *testClock, rtt time.Duration, out CRMOutcome) int {
	t.Helper()
	var held []func(CRMOutcome)
	for i := 0; ; i++ {
		done, err := ls[i%len(ls)].AcquireFeedback(ctx)
		if err != nil {
			refusal(t, err)
			break
		}
		held = append(held, done)
		if len(held) > 1000 {
			t.Fatal("no cap")
		}
	}
	clock.Advance(rtt)
	for _, done := range held {
		done(out)
	}
	return len(held)
}

func limitOf(t *testing.T, l *redisLimiter) float64 {
	t.Helper()
	v, err := l.Limit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAdaptiveConcurrency(t *testing.T) {
	t.Parallel()
	t.Run("starts low and grows to the cap while latency holds", func(t *testing.T) {
		t.Parallel()
		ls, clock := adaptiveFleet(t, 2, 12)
		if got := round(t, ls, clock, 20*time.Millisecond, CRMAnswered); got != adaptiveStart {
			t.Fatalf("a new fleet admitted %d at once, want %d", got, adaptiveStart)
		}
		peak := 0
		for range 30 {
			peak = max(peak, round(t, ls, clock, 20*time.Millisecond, CRMAnswered))
		}
		if peak != 12 {
			t.Errorf("peak admitted at once = %d, want the cap 12", peak)
		}
	})
	t.Run("latency far above the base cuts the limit once per round trip", func(t *testing.T) {
		t.Parallel()
		ls, clock := adaptiveFleet(t, 2, 32)
		for limitOf(t, ls[0]) < 10 {
			round(t, ls, clock, 20*time.Millisecond, CRMAnswered)
		}
		before := limitOf(t, ls[0])
		round(t, ls, clock, 200*time.Millisecond, CRMAnswered) // every slot saw 10× the base
		if got, want := limitOf(t, ls[1]), before*0.8; math.Abs(got-want) > 0.01 {
			t.Errorf("limit after a slow round = %.2f, want %.2f (0.8 × %.2f, once)", got, want, before)
		}
	})
	t.Run("overload cuts, a moderate rise holds, abandoned requests say nothing", func(t *testing.T) {
		t.Parallel()
		ls, clock := adaptiveFleet(t, 1, 32)
		for limitOf(t, ls[0]) < 6 {
			round(t, ls, clock, 20*time.Millisecond, CRMAnswered)
		}
		for range 3 { // latency settles at 2× the base
			round(t, ls, clock, 40*time.Millisecond, CRMAnswered)
		}
		before := limitOf(t, ls[0])
		round(t, ls, clock, 40*time.Millisecond, CRMAnswered) // still 2× the base: hold
		if got := limitOf(t, ls[0]); got != before {
			t.Errorf("limit after 2× latency = %.3f, want it held at %.3f", got, before)
		}
		round(t, ls, clock, 10*time.Second, CRMAbandoned)
		if got := limitOf(t, ls[0]); got != before {
			t.Errorf("limit after abandoned requests = %.3f, want %.3f", got, before)
		}
		round(t, ls, clock, 20*time.Millisecond, CRMOverloaded)
		if got, want := limitOf(t, ls[0]), before*0.8; math.Abs(got-want) > 0.01 {
			t.Errorf("limit after overload = %.3f, want %.3f", got, want)
		}
	})
	t.Run("an outage takes it to one, and recovery back up below the cliff", func(t *testing.T) {
		t.Parallel()
		ls, clock := adaptiveFleet(t, 2, 32)
		for limitOf(t, ls[0]) < 16 {
			round(t, ls, clock, 20*time.Millisecond, CRMAnswered)
		}
		for range 20 {
			round(t, ls, clock, 5*time.Second, CRMOverloaded)
		}
		if got := limitOf(t, ls[0]); got != 1 {
			t.Errorf("limit after a long outage = %.3f, want 1", got)
		}
		if n := round(t, ls, clock, 20*time.Millisecond, CRMAnswered); n != 1 {
			t.Errorf("admitted %d at once at limit 1", n)
		}
		peak := 0
		for range 200 {
			peak = max(peak, round(t, ls, clock, 20*time.Millisecond, CRMAnswered))
		}
		if peak != 15 {
			t.Errorf("peak admitted at once after the outage = %d, want 15 (below the 16 in force when it began)", peak)
		}
	})
	t.Run("a collapse is remembered, and probed again later", func(t *testing.T) {
		t.Parallel()
		ls, clock := adaptiveFleet(t, 2, 32)
		for limitOf(t, ls[0]) < 5 {
			round(t, ls, clock, 20*time.Millisecond, CRMAnswered)
		}
		round(t, ls, clock, 5*time.Second, CRMAnswered) // 5 admitted, all stalled: a cliff at 5
		peak := 0
		for range 40 {
			peak = max(peak, round(t, ls, clock, 20*time.Millisecond, CRMAnswered))
		}
		if peak != 4 {
			t.Errorf("peak admitted at once after a collapse at 5 = %d, want 4", peak)
		}
		clock.Advance(adaptiveProbeAfter)
		for range 40 {
			peak = max(peak, round(t, ls, clock, 20*time.Millisecond, CRMAnswered))
		}
		if peak <= 5 {
			t.Errorf("peak admitted at once %s after the collapse = %d, want it to probe past 5", adaptiveProbeAfter, peak)
		}
	})
	t.Run("a CPU-bound PHP pool: settles where latency rises, never at the cliff", func(t *testing.T) {
		t.Parallel()
		// Like crmsim's PHP pool with 2 CPUs: 20 ms an add up to 2 at once,
		// stretched by the load above, and every add stalls 5 s at 8.
		ls, clock := adaptiveFleet(t, 2, 32)
		peak := 0
		for range 1500 { // a minute of the fleet's clock at full load
			var held []func(CRMOutcome)
			for i := 0; ; i++ {
				done, err := ls[i%2].AcquireFeedback(ctx)
				if err != nil {
					break
				}
				held = append(held, done)
			}
			k := len(held)
			peak = max(peak, k)
			rtt := 20 * time.Millisecond * time.Duration(max(k, 2)) / 2
			if k >= 8 {
				rtt = 5 * time.Second
			}
			clock.Advance(rtt)
			for _, done := range held {
				done(CRMAnswered)
			}
		}
		if peak >= 8 {
			t.Errorf("the fleet reached %d in flight: the pool's cliff", peak)
		}
		if got := limitOf(t, ls[0]); got < 2 {
			t.Errorf("limit settled at %.2f, want at least the 2 the CPUs serve without queueing", got)
		}
	})
	t.Run("a CRM congested at the start does not pin the fleet", func(t *testing.T) {
		t.Parallel()
		ls, clock := adaptiveFleet(t, 2, 32)
		round(t, ls, clock, 20*time.Millisecond, CRMAnswered)
		round(t, ls, clock, 5*time.Second, CRMAnswered) // someone else's burst is still being served
		peak := 0
		for range 100 {
			peak = max(peak, round(t, ls, clock, 20*time.Millisecond, CRMAnswered))
		}
		if peak < 8 {
			t.Errorf("peak admitted at once after a congested start = %d, want the limit to grow again", peak)
		}
	})
	t.Run("a lightly loaded fleet does not grow", func(t *testing.T) {
		t.Parallel()
		ls, clock := adaptiveFleet(t, 1, 32)
		for range 50 { // one request at a time, fast
			done, err := ls[0].AcquireFeedback(ctx)
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(20 * time.Millisecond)
			done(CRMAnswered)
		}
		if got := limitOf(t, ls[0]); got >= 4 {
			t.Errorf("limit after 50 lone requests = %.2f, want below 4: unused slots prove nothing", got)
		}
	})
}

// TestAcquireCRMOutcome: the handler's CRM errors become load signals.
func TestAcquireCRMOutcome(t *testing.T) {
	t.Parallel()
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want CRMOutcome
	}{
		{"success", ctx, nil, CRMAnswered},
		{"timeout", ctx, context.DeadlineExceeded, CRMOverloaded},
		{"transport", ctx, &crmclient.TransportError{Action: "add", Err: errors.New("connection refused")}, CRMOverloaded},
		{"HTTP 503", ctx, &crmclient.StatusError{Action: "add", StatusCode: 503}, CRMOverloaded},
		{"HTTP 429", ctx, &crmclient.StatusError{Action: "add", StatusCode: 429}, CRMOverloaded},
		{"CRM refused the lead", ctx, &crmclient.APIError{Code: 1, Text: "add failed"}, CRMAnswered},
		{"our cancellation", cctx, context.Canceled, CRMAbandoned},
	} {
		if got := crmOutcome(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: crmOutcome = %v, want %v", tc.name, got, tc.want)
		}
	}
}
