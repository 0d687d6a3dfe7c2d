package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
)

// CRM health is a fleet fact: a configuration problem seen by one worker
// opens the shared circuit with the problem recorded (rdb.Circuit), so
// every worker pauses and every readiness check reports it within
// healthCacheFor.

// configLogEvery limits the configuration-problem error log per process.
const configLogEvery = time.Minute

// healthCacheFor is how long Ready trusts the circuit it read last.
const healthCacheFor = time.Second

// preflightEvery is how often a worker checks the CRM's configuration
// while it runs; preflightAfterErrorEvery bounds the check an add answered
// with an error page triggers (crm.Caps.CheckErrorPages).
const (
	preflightEvery           = 5 * time.Minute
	preflightAfterErrorEvery = 30 * time.Second
)

// health is a process's view of the fleet's CRM health.
type health struct {
	mu         sync.Mutex
	circuit    rdb.Circuit
	readAt     time.Time
	loggedAt   time.Time
	preflghtAt time.Time
}

// saw records the circuit as a delivery read it.
func (hl *health) saw(c rdb.Circuit, now time.Time, obs Observer) {
	hl.mu.Lock()
	hl.circuit, hl.readAt = c, now
	hl.mu.Unlock()
	obs.CRMCircuitOpen(c.Wait > 0)
	obs.CRMConfigProblem(!c.Problem.IsZero())
}

// failing reports whether the circuit had failures to clear as this
// process last saw it: at its latest Begin, or at a failure it counted.
// A run's own reading is as old as the run, and a run may wait long for a
// CRM slot; without this, a working call after a failure often cleared
// nothing, and the next failure of a poison lead could not be told apart
// (rdb.CircuitLeadFault).
func (hl *health) failing() bool {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	return hl.circuit.Exists
}

// failed records that this process counted a failure in the circuit.
func (hl *health) failed() {
	hl.mu.Lock()
	hl.circuit.Exists = true
	hl.mu.Unlock()
}

// problem opens the fleet's circuit for a configuration problem and logs
// it at most once a minute per process.
func (hl *health) problem(ctx context.Context, h *Handler, problem delivery.Reason) {
	if serr := h.store.CircuitProblem(ctx, h.circuitArgs(), problem); serr != nil {
		h.log.Warn("CRM configuration problem not shared with the fleet", zap.Error(serr))
	}
	h.o.Observer.CRMConfigProblem(true)
	hl.mu.Lock()
	hl.circuit.Problem = problem
	due := time.Since(hl.loggedAt) >= configLogEvery
	if due {
		hl.loggedAt = time.Now()
	}
	hl.mu.Unlock()
	if due {
		h.log.Error("CRM configuration problem: deliveries paused, no attempts spent, nothing dead-lettered",
			zap.String("reason_code", string(problem.Code)), zap.String("fix", problem.Text(delivery.Operators)))
	}
}

// worked closes the fleet's circuit after a CRM answer that shows it works
// (only when there was state to clear).
func (hl *health) worked(ctx context.Context, h *Handler, hadState bool) {
	if !hadState {
		return
	}
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	ended, err := h.store.CircuitReset(bctx)
	if err != nil {
		h.log.Warn("circuit breaker reset failed", zap.Error(err))
		return
	}
	if ended {
		h.log.Warn("CRM circuit closed: the CRM answers again and deliveries resume")
		h.o.outage(false, delivery.Reason{})
	}
	hl.mu.Lock()
	hl.circuit = rdb.Circuit{}
	hl.mu.Unlock()
	h.o.Observer.CRMCircuitOpen(false)
	h.o.Observer.CRMConfigProblem(false)
}

// preflightAfterError runs the preflight after an add answered with an
// error page (HTTP 500 included), at most every preflightAfterErrorEvery,
// on an API version whose capabilities ask for it: on a current SalesMan
// every v1 add does, and only the preflight tells that from a passing
// fault. It returns the problem found, or no reason.
func (hl *health) preflightAfterError(ctx context.Context, h *Handler, addErr error) delivery.Reason {
	if judge(addErr).reason.Code != delivery.CRMErrorPage {
		return delivery.Reason{}
	}
	hl.mu.Lock()
	due := time.Since(hl.preflghtAt) >= preflightAfterErrorEvery
	if due {
		hl.preflghtAt = time.Now()
	}
	known := hl.circuit.Problem
	hl.mu.Unlock()
	if !due {
		return known
	}
	problem, _ := h.Preflight(ctx)
	return problem
}

// Preflight checks the CRM's configuration as the API version needs it
// (crm.API.Preflight). A problem found is shared with the fleet
// (deliveries pause) and returned; a CRM that works clears a recorded
// problem; a CRM that cannot be reached changes nothing and returns the
// error.
func (h *Handler) Preflight(ctx context.Context) (delivery.Reason, error) {
	problem, err := h.api.Preflight(ctx)
	if err != nil {
		return delivery.Reason{}, err
	}
	if !problem.IsZero() {
		h.health.problem(ctx, h, problem)
		return problem, nil
	}
	c, cerr := h.store.Circuit(ctx, h.o.Clock())
	if cerr == nil && !c.Problem.IsZero() {
		h.health.worked(ctx, h, true)
		h.log.Info("CRM configuration problem resolved", zap.String("was", string(c.Problem.Code)))
	}
	return delivery.Reason{}, nil
}

// Start reads Redis's clock, which the worker keeps from then on
// (clock.go: one clock for the fleet), and then keeps checking the CRM
// while ctx lives, in the background: a preflight of the CRM's
// configuration now and every preflightEvery, and the API version's
// look-up bookkeeping (crm.API.Refresh: v1's journal), so even the first
// sends have a watermark. It returns after that one Redis round trip (a
// slow CRM must not delay a worker's start); until the first check ends,
// sends use the watermark as the fleet last recorded it (crm.API.Resume).
func (h *Handler) Start(ctx context.Context) {
	check := func() {
		if err := h.api.Refresh(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("CRM journal refresh failed", zap.Error(err))
		}
		if _, err := h.Preflight(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("CRM preflight could not reach the CRM", zap.Error(err))
		}
	}
	h.keepClock(ctx)
	h.keepEpoch(ctx)
	if err := h.api.Resume(ctx); err != nil {
		h.log.Debug("CRM watermark not read; the first refresh sets it", zap.Error(err))
	}
	go every(ctx, preflightEvery, check)
	go every(ctx, stripEvery, func() { h.stripDelivered(ctx) })
}

// ConfigProblem returns the CRM configuration problem any worker of the
// fleet saw (deliveries are paused), or no reason. Its operators' text
// says what to fix.
func (h *Handler) ConfigProblem(ctx context.Context) delivery.Reason {
	h.health.mu.Lock()
	now := h.o.Clock()
	c, fresh := h.health.circuit, !h.health.readAt.IsZero() && now.Sub(h.health.readAt) < healthCacheFor
	h.health.mu.Unlock()
	if !fresh {
		var err error
		if c, err = h.store.Circuit(ctx, now); err != nil {
			return delivery.Reason{}
		}
		h.health.saw(c, now, h.o.Observer)
	}
	return c.Problem
}

// Ready is a readiness check: an error naming the problem's code and the
// fix while the fleet has a CRM configuration problem (deliveries are
// paused), else nil. It never quotes the CRM: readiness is served on the
// sites' listener too.
func (h *Handler) Ready(ctx context.Context) error {
	if problem := h.ConfigProblem(ctx); !problem.IsZero() {
		return errors.New("CRM configuration problem, deliveries paused: " + problem.Text(delivery.Chat))
	}
	return nil
}

// CircuitState reads the fleet's circuit: whether it is open (or half-open
// with a probe in flight) and, if so, for how long at least.
func (h *Handler) CircuitState(ctx context.Context) (open bool, wait time.Duration, err error) {
	c, err := h.store.Circuit(ctx, h.o.Clock())
	if err != nil {
		return false, 0, crm.StoreErr("read circuit breaker", err)
	}
	h.health.saw(c, h.o.Clock(), h.o.Observer)
	return c.Wait > 0, c.Wait, nil
}

// every runs f now, then every d, until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	f()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// CRM is the CRM's API version as this handler's runs call it (every call
// bounded by the CRM timeout and admitted by the limiter), for the audit
// (package audit), which reads back what the runs delivered.
func (h *Handler) CRM() crm.API { return h.api }

// Now is the time on the fleet's clock (Redis's, once Start measured it).
func (h *Handler) Now() time.Time { return h.o.Clock() }

// probeRecheck is the least wait of a lead while another run's half-open
// probe is out (and the spread of its jitter).
const probeRecheck = 500 * time.Millisecond

// probeWait is how long a lead waits while another run's probe is out,
// left being what remains of the probe's lease: about as long as the probe
// has been out, at least probeRecheck, never past its lease. The leads an
// open circuit postponed all come due when the probe does; waiting out the
// whole lease (LEADRELAY_CRM_TIMEOUT) kept a backlog from a CRM that had
// answered the probe in milliseconds, while a probe that hangs still costs
// each lead only a few re-schedules.
func (h *Handler) probeWait(left time.Duration) time.Duration {
	out := max(h.o.CRMTimeout-left, 0)
	return min(max(out, probeRecheck), left) + rand.N(probeRecheck)
}
