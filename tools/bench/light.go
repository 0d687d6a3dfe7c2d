package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/config"
	"leadrelay/crmsim"
	"leadrelay/internal/app"
	"leadrelay/worker"
)

// crmLatency is the CRM's answer time in the latency section.
const crmLatency = 50 * time.Millisecond

// latencyConcs are the worker concurrencies measured at crmLatency.
var latencyConcs = []int{10, 40}

// latency measures delivery against a CRM that takes crmLatency per call:
// the bound is C/L.
func (b *bench) latency(ctx context.Context) error {
	c, err := startCRM(crmsim.Faults{Latency: crmsim.Duration(crmLatency)})
	if err != nil {
		return err
	}
	defer c.close()
	for _, conc := range latencyConcs {
		n := b.sz.latencyLeads * conc / 10
		res, err := b.deliverOnce(ctx, c, deliveryRelay, shape{1, conc}, n, nil)
		if err != nil {
			return fmt.Errorf("C=%d: %w", conc, err)
		}
		raw, err := b.deliverOnce(ctx, c, deliveryRaw, shape{1, conc}, n, nil)
		if err != nil {
			return fmt.Errorf("raw C=%d: %w", conc, err)
		}
		bound := float64(conc) / crmLatency.Seconds()
		b.logf("latency LeadRelay 1×%d at %s CRM latency %6.0f/s  raw server %6.0f/s  bound C/L %4.0f/s",
			conc, crmLatency, res.perSec, raw.perSec, bound)
		b.rep.Latency = append(b.rep.Latency, LatencyPoint{Conc: conc, PerSec: res.perSec, Raw: raw.perSec, Bound: bound})
	}
	return nil
}

// lightInterval is the gap between leads under light load; idleGap the
// gap between leads sent into an idle fleet (longer than a worker's spell
// of work after its last lead, so each finds every worker idle).
const (
	lightInterval = 50 * time.Millisecond
	idleGap       = 2 * time.Second
)

// pollSweep are the poll intervals tried under light load.
var pollSweep = []time.Duration{200 * time.Millisecond, 100 * time.Millisecond, 50 * time.Millisecond, 20 * time.Millisecond}

// light measures, for LeadRelay at its defaults, the Redis commands per
// second of an idle intake and worker (over idleDefault: a minute), then
// ack → CRM latency of leads sent one every idleGap into the idle fleet,
// and at one lead every lightInterval; for the raw reference at its
// defaults the same; then LeadRelay's latency at each busy poll interval
// of pollSweep.
func (b *bench) light(ctx context.Context) error {
	c, err := startCRM(crmsim.Faults{})
	if err != nil {
		return err
	}
	defer c.close()

	// LeadRelay as configured, intake and worker.
	if err := b.flush(ctx); err != nil {
		return err
	}
	lr, err := startRelay(ctx, b.env(c, nil), app.Roles{Intake: true, Worker: true})
	if err != nil {
		return err
	}
	idle, err := b.idleLoad(ctx, b.sz.idleDefault)
	if err == nil {
		var lat []time.Duration
		if lat, err = b.lightRun(ctx, c, lr.url, "idle", b.sz.idleLeads, idleGap); err == nil {
			b.logf("light   LeadRelay, idle fleet, 1 lead / %s  p50 %6s p99 %6s  idle %s over %s",
				idleGap, pct(lat, .5), pct(lat, .99), idle, b.sz.idleDefault)
			b.rep.addLight(lightIdleFleet, idleGap, lat, idle)
		}
	}
	if err == nil {
		var lat []time.Duration
		if lat, err = b.lightRun(ctx, c, lr.url, "lr", b.sz.lightLeads, lightInterval); err == nil {
			b.logf("light   LeadRelay (default poll)      p50 %6s p99 %6s  idle %s", pct(lat, .5), pct(lat, .99), idle)
			b.rep.addLight(lightDefault, lightInterval, lat, idle)
		}
	}
	lr.stop()
	if err != nil {
		return err
	}

	// The reference: bare intake, raw server with the CRM call, at asynq's
	// default TaskCheckInterval and at rawPoll (TaskCheckInterval alone:
	// DelayedTaskCheckInterval stays at its default).
	for _, poll := range []time.Duration{0, rawPoll} {
		if err := b.lightRaw(ctx, c, poll); err != nil {
			return err
		}
	}

	// The sweep: LeadRelay's intake, and its worker built here with the
	// busy poll interval set (worker.Options.BusyPollInterval).
	intakeOnly, err := startRelay(ctx, b.env(c, nil), app.Roles{Intake: true})
	if err != nil {
		return err
	}
	defer intakeOnly.stop()
	for _, poll := range pollSweep {
		if err := b.flush(ctx); err != nil {
			return err
		}
		stop, err := b.startPolledWorker(ctx, c, poll)
		if err != nil {
			return err
		}
		idle, err := b.idleLoad(ctx, b.sz.idleFor)
		var lat []time.Duration
		if err == nil {
			lat, err = b.lightRun(ctx, c, intakeOnly.url, "poll"+strconv.Itoa(int(poll.Milliseconds())), b.sz.sweepLeads, lightInterval)
		}
		stop()
		if err != nil {
			return err
		}
		b.logf("light   LeadRelay busy poll %-9s p50 %6s p99 %6s  idle %s", poll, pct(lat, .5), pct(lat, .99), idle)
		b.rep.addLight("LeadRelay, busy poll "+poll.String(), lightInterval, lat, idle)
	}
	return nil
}

// rawPoll is the TaskCheckInterval the raw reference is also measured at.
const rawPoll = 50 * time.Millisecond

// lightRaw measures the raw reference under light load with
// TaskCheckInterval poll (0: asynq's default).
func (b *bench) lightRaw(ctx context.Context, c *crm, poll time.Duration) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	bare, err := startBareIntake(b.addr)
	if err != nil {
		return err
	}
	defer bare.close()
	stopRaw, err := b.startRaw(c, false, 10, nil, poll)
	if err != nil {
		return err
	}
	defer stopRaw()
	idle, err := b.idleLoad(ctx, b.sz.idleFor)
	if err != nil {
		return err
	}
	lat, err := b.lightRun(ctx, c, bare.url, "raw"+strconv.Itoa(int(poll.Milliseconds())), b.sz.lightLeads, lightInterval)
	if err != nil {
		return err
	}
	name := lightRaw
	if poll > 0 {
		name = "raw asynq, TaskCheckInterval " + poll.String()
	}
	b.logf("light   %-30s p50 %6s p99 %6s  idle %s", name, pct(lat, .5), pct(lat, .99), idle)
	b.rep.addLight(name, lightInterval, lat, idle)
	return nil
}

// startPolledWorker runs LeadRelay's worker as internal/app wires it (CRM
// client, fleet limiter), without dead-letter store and metrics, with
// Options.BusyPollInterval set to poll.
func (b *bench) startPolledWorker(ctx context.Context, c *crm, poll time.Duration) (func(), error) {
	env := b.env(c, nil)
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	log := app.NewLogger(cfg, io.Discard)
	crmC, err := app.OpenCRM(ctx, cfg, false, log)
	if err != nil {
		return nil, err
	}
	codec, err := app.DataCodec(cfg, false, log)
	if err != nil {
		crmC.Close()
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: b.addr})
	o := app.WorkerOptions(cfg)
	o.Codec = codec // intake seals under the bench's keys: the worker opens them as app's does
	o.BusyPollInterval = poll
	o.Limiter = app.CRMLimiter(rdb, cfg)
	h, err := worker.NewHandler(crmC.Client, rdb, o, log)
	if err != nil {
		crmC.Close()
		_ = rdb.Close()
		return nil, err
	}
	w := worker.New(rdb, h, o, log)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		crmC.Close()
		_ = rdb.Close()
	}, nil
}

// idleLoad is what Redis serves per second while nothing is queued.
type idleLoad struct {
	// cmds counts every command, those scripts run included
	// (total_commands_processed); reqs the requests on the wire, a
	// pipeline or a script call one (total_reads_processed).
	cmds, reqs float64
}

// String is the load as the progress lines print it.
func (l idleLoad) String() string {
	return fmt.Sprintf("%5.2f Redis requests/s (%5.2f commands/s)", l.reqs, l.cmds)
}

// idleLoad measures Redis's load over window after the servers settled;
// the bench's own two INFO calls are left out.
func (b *bench) idleLoad(ctx context.Context, window time.Duration) (idleLoad, error) {
	select {
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
		return idleLoad{}, ctx.Err()
	}
	before, err := info(ctx, b.rdb, "stats", "total_commands_processed", "total_reads_processed")
	if err != nil {
		return idleLoad{}, err
	}
	t0 := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return idleLoad{}, ctx.Err()
	}
	after, err := info(ctx, b.rdb, "stats", "total_commands_processed", "total_reads_processed")
	if err != nil {
		return idleLoad{}, err
	}
	secs := time.Since(t0).Seconds()
	return idleLoad{
		cmds: max(after["total_commands_processed"]-before["total_commands_processed"]-1, 0) / secs,
		reqs: max(after["total_reads_processed"]-before["total_reads_processed"]-1, 0) / secs,
	}, nil
}

// lightRun posts m leads, one every every, and returns each one's
// time from its acknowledgement to its arrival in the CRM, sorted. A lead
// can reach the CRM before its ack reaches the client: that counts as 0.
func (b *bench) lightRun(ctx context.Context, c *crm, base, run string, m int, every time.Duration) ([]time.Duration, error) {
	hc := httpClient(1)
	defer hc.CloseIdleConnections()
	done := c.expect(m, true)
	acks := make(map[string]time.Time, m)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range m {
		if err := postJSON(ctx, hc, base, run, i); err != nil {
			return nil, fmt.Errorf("lead %d: %w", i, err)
		}
		acks[benchLead(run, i).Email] = time.Now()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("only %d of %d light-load leads reached the CRM within 30s", c.count(), m)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	arr := c.arrivals()
	lat := make([]time.Duration, 0, m)
	for email, ack := range acks {
		at, ok := arr[email]
		if !ok {
			return nil, fmt.Errorf("lead %s never reached the CRM", email)
		}
		lat = append(lat, max(at.Sub(ack), 0))
	}
	slices.Sort(lat)
	return lat, nil
}
