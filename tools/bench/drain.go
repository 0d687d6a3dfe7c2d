package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
)

// drainPools are the simulated CRM's PHP pools the drain section runs.
var drainPools = []int{8, 32}

// drainLevels are the parallel direct adds whose best is the reference.
var drainLevels = []int{1, 2, 4, 8, 16, 32}

// drainLeads are queued during an outage of drainOutage (issue 20). A
// fleet that knew the CRM first delivers drainWarm leads with it up.
const (
	drainLeads  = 5000
	drainOutage = 30 * time.Second
	drainWarm   = 1500
)

// DrainPoint is one drain after an outage: leads queued while the CRM was
// down, delivered by LeadRelay's fleet (poolShape, default settings) once
// it is back, against the CRM's best direct rate in the same run.
type DrainPoint struct {
	// CRM names the CRM: "PHP pool 8", "real".
	CRM string
	// Warm is how many leads the fleet delivered before the outage: 0 for
	// a new deployment (nothing learned: a fresh Redis), more for a fleet
	// restarted as the CRM went down, as in the issue, whose adaptive
	// limit Redis kept.
	Warm int
	// Leads were queued; Delivered reached the CRM (distinct leads), Dups
	// more than once.
	Leads, Delivered, Dups int
	// Wait is from the CRM's return to the first delivery (the circuit's
	// cooldown and probe); Drain from the first delivery to the last.
	Wait, Drain time.Duration
	// PerSec is the leads delivered a second over Drain.
	PerSec float64
	// Direct is the best direct rate (mean of the sweeps before and after)
	// and DirectAt its parallel requests.
	Direct   float64
	DirectAt int
	// Peak is the most CRM requests in flight at once during the drain;
	// Limit the fleet's adaptive limit at its end.
	Peak  int
	Limit float64
}

// drain measures, for each simulated PHP pool, how fast the fleet drains a
// backlog queued during an outage.
func (b *bench) drain(ctx context.Context) error {
	for _, workers := range drainPools {
		c, err := startCRM(poolFaults(workers))
		if err != nil {
			return err
		}
		cl, err := crmclient.New(c.url, crmLogin, crmAPIKey, crmclient.WithAPIVersion(crmclient.V2),
			crmclient.WithTimeout(30*time.Second), crmclient.WithMaxIdleConns(64))
		if err != nil {
			c.close()
			return err
		}
		err = b.drainOf(ctx, fmt.Sprintf("PHP pool %d", workers), c, cl, nil, 0)
		c.close()
		if err != nil {
			return err
		}
	}
	return nil
}

// realDrain is drain against the real CRM (its own section, so a run
// against the shared CRM holds it no longer than it needs).
func (b *bench) realDrain(ctx context.Context) error {
	rc := b.o.RealCRM
	c, err := startCRMProxy(rc.URL)
	if err != nil {
		return err
	}
	defer c.close()
	cl, err := crmclient.New(c.url, rc.Login, rc.APIKey, crmclient.WithAPIVersion(crmclient.V2),
		crmclient.WithTimeout(30*time.Second), crmclient.WithMaxIdleConns(32))
	if err != nil {
		return err
	}
	env := map[string]string{"LEADRELAY_CRM_LOGIN": rc.Login, "LEADRELAY_CRM_APIKEY": rc.APIKey}
	return b.drainOf(ctx, "real", c, cl, env, realCooldown)
}

// drainOf sweeps the direct rate, then runs each drain (a new fleet's,
// then a restarted one's) followed by a sweep, with a pause after each (a
// real CRM's collapsed requests finish within its 5 s webhook stall). A
// drain's reference is the mean of the sweeps before and after it: a host
// that got busier or quieter meanwhile, or a real CRM that got slower as
// its tables grew, skews neither side.
func (b *bench) drainOf(ctx context.Context, name string, c *crm, cl *crmclient.Client, env map[string]string, pause time.Duration) error {
	warm, window, leads, outage, warmLeads := time.Second, 4*time.Second, drainLeads, drainOutage, drainWarm
	levels := drainLevels
	if b.o.Quick {
		warm, window, leads, outage, levels, warmLeads = 200*time.Millisecond, 500*time.Millisecond, 150, 2*time.Second, []int{2, 8}, 50
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	sweep := func(n int) (map[int]float64, error) {
		rates := map[int]float64{}
		for _, p := range levels {
			rate, failed := directRate(ctx, cl, fmt.Sprintf("%s-d%d-%d", run, n, p), p, warm, window)
			b.logf("drain   %-10s direct, sweep %d, %2d parallel  %6.1f adds/s  (%d failed)", name, n, p, rate, failed)
			rates[p] = rate
		}
		return rates, sleepCtx(ctx, pause)
	}
	before, err := sweep(1)
	if err != nil {
		return err
	}
	env = mergeEnv(map[string]string{"LEADRELAY_CRM_MAX_CONCURRENT": "", "LEADRELAY_CRM_RATE_LIMIT": "", "LEADRELAY_CRM_ADAPTIVE": ""}, env)
	if b.o.Quick {
		env["LEADRELAY_BREAKER_COOLDOWN"] = "1s" // the default 30 s would be most of a quick run
	}
	for i, w := range []int{0, warmLeads} {
		pt, err := b.drainRun(ctx, c, run+"-w"+strconv.Itoa(w), env, w, leads, outage)
		if err != nil {
			return err
		}
		if err := sleepCtx(ctx, pause); err != nil {
			return err
		}
		after, err := sweep(i + 2)
		if err != nil {
			return err
		}
		if err := b.drainDone(name, pt, before, after); err != nil {
			return err
		}
		before = after
	}
	return nil
}

// drainDone names pt's CRM, sets its reference (the best of the mean
// direct rates of the sweeps before and after it), logs and reports it,
// and fails a drain that lost or doubled a lead.
func (b *bench) drainDone(name string, pt DrainPoint, before, after map[int]float64) error {
	pt.CRM = name
	for p, rate := range before {
		if mean := (rate + after[p]) / 2; mean > pt.Direct {
			pt.Direct, pt.DirectAt = mean, p
		}
	}
	b.logf("drain   %-10s warm %4d: %d of %d leads (%d twice), first after %s, drained in %s: %.1f leads/s (best direct %.1f at %d), peak %d in flight, limit %.0f",
		name, pt.Warm, pt.Delivered, pt.Leads, pt.Dups, pt.Wait.Round(time.Millisecond), pt.Drain.Round(time.Millisecond),
		pt.PerSec, pt.Direct, pt.DirectAt, pt.Peak, pt.Limit)
	b.rep.Drain = append(b.rep.Drain, pt)
	if pt.Delivered != pt.Leads || pt.Dups != 0 {
		return fmt.Errorf("drain %s: %d of %d leads delivered, %d twice", name, pt.Delivered, pt.Leads, pt.Dups)
	}
	return nil
}

// drainRun queues leads while the CRM is down (its proxy answers 503),
// starts the fleet, ends the outage after outage, and waits (bounded) until
// every lead reached the CRM. With warm > 0 a fleet first delivers warm
// leads while the CRM is up, and stops as the outage begins.
func (b *bench) drainRun(ctx context.Context, c *crm, run string, env map[string]string, warm, leads int, outage time.Duration) (DrainPoint, error) {
	pt := DrainPoint{Leads: leads, Warm: warm}
	if err := b.flush(ctx); err != nil {
		return pt, err
	}
	if err := b.warmFleet(ctx, c, run, env, warm); err != nil {
		return pt, err
	}
	c.setDown(true)
	defer c.setDown(false)
	if err := b.preload(ctx, true, "drain-"+run, leads); err != nil {
		return pt, err
	}
	c.expect(0, true)
	stop, err := b.startWorkers(ctx, c, deliveryRelay, poolShape, nil, env)
	if err != nil {
		return pt, err
	}
	defer stop()
	if err := sleepCtx(ctx, outage); err != nil {
		return pt, err
	}
	c.expect(0, true)
	c.resetPeak()
	back := time.Now()
	c.setDown(false)
	// Bounded: 2 leads a second at least, plus the circuit's cooldown.
	deadline := back.Add(time.Minute + time.Duration(leads/2)*time.Second)
	for c.distinct() < leads && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return pt, err
		}
	}
	first, last := c.span()
	pt.Delivered, pt.Dups, pt.Peak = c.distinct(), c.twice(), c.peakInflight()
	pt.Wait, pt.Drain = first.Sub(back), last.Sub(first)
	if pt.Drain > 0 {
		pt.PerSec = float64(pt.Delivered-1) / pt.Drain.Seconds()
	}
	pt.Limit, _ = rdb.New(b.rdb).CRMLimit(ctx)
	return pt, nil
}

// warmFleet has a fleet (poolShape, env) deliver n leads, then stops it:
// what it learned of the CRM (the adaptive limit) stays in Redis.
func (b *bench) warmFleet(ctx context.Context, c *crm, run string, env map[string]string, n int) error {
	if n == 0 {
		return nil
	}
	if err := b.preload(ctx, true, "warm-"+run, n); err != nil {
		return err
	}
	done := c.expect(n, false)
	stop, err := b.startWorkers(ctx, c, deliveryRelay, poolShape, nil, env)
	if err != nil {
		return err
	}
	defer stop()
	return awaitDelivered(ctx, done, &c.counter, n)
}

// outage is the counter's switch that takes its CRM down (HTTP 503, as a
// proxy in front of a dead PHP answers), and its gauge of requests in
// flight.
type outage struct {
	mu       sync.Mutex
	down     bool
	inflight int
	peak     int
}

func (o *outage) setDown(down bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = down
}

// enter admits a request unless the CRM is down; leave must follow it.
func (o *outage) enter(w http.ResponseWriter) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return false
	}
	o.inflight++
	o.peak = max(o.peak, o.inflight)
	return true
}

func (o *outage) leave() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inflight--
}

// peakInflight is the most requests in flight at once since the last
// resetPeak.
func (o *outage) peakInflight() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.peak
}

func (o *outage) resetPeak() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.peak = o.inflight
}

// mergeEnv is base with extra's entries over it.
func mergeEnv(base, extra map[string]string) map[string]string {
	for k, v := range extra {
		base[k] = v
	}
	return base
}

// sleepCtx sleeps d, or less when ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Report) drainRows() []Row {
	var rows []Row
	for _, p := range r.Drain {
		fleet := "a new fleet and Redis"
		if p.Warm > 0 {
			fleet = fmt.Sprintf("fleet restarted in the outage after %d leads", p.Warm)
		}
		rows = append(rows, ratioRow(fmt.Sprintf("drain of %d leads queued in an outage, %s, 2×10 defaults, %s (peak %d in flight, limit %.0f at the end)",
			p.Leads, p.CRM, fleet, p.Peak, p.Limit), p.PerSec, fmt.Sprintf("best direct rate (%d parallel)", p.DirectAt), p.Direct, "%.1f", "≥ 0.9", true))
		rows = append(rows, Row{Figure: fmt.Sprintf("drain, %s, %s: first delivery after the CRM's return; delivered, twice", p.CRM, fleet),
			Value: fmt.Sprintf("%s; %d of %d, %d", p.Wait.Round(time.Millisecond), p.Delivered, p.Leads, p.Dups)})
	}
	return rows
}
