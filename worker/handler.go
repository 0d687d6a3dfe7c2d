package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/crm/versions"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/fleetclock"
	"leadrelay/internal/rdb"
	"leadrelay/internal/seal"
	"leadrelay/lead"
	"leadrelay/tracing"
)

// markerWrites is how often a delivered marker is tried before giving up.
const markerWrites = 4

// Handler delivers lead tasks to the CRM. It implements asynq.Handler and is
// safe for concurrent use. Build it with NewHandler.
type Handler struct {
	api   crm.API // the CRM's API version: add, look-up, preflight
	store *rdb.Store
	o     Options
	log   *zap.Logger

	stats    counters
	health   health
	clock    *fleetclock.Clock // Options.Clock on Redis's time (clock.go)
	current  atomic.Bool       // only workers of this version serve the queue (see fleetWatch)
	rollback rollbackWatch     // the fleet epoch as this worker counted it (rollback.go)
	name     string            // this process, host:pid, as its runs' timeline entries name it
	strips   strips            // delivered tasks to reduce to their envelopes (strip.go)
}

// NewHandler returns a Handler that adds leads through client and keeps
// its state in rc. Zero fields of o take their defaults. It fails when
// LeadRelay does not know the API version client speaks.
func NewHandler(client crm.Client, rc redis.UniversalClient, o Options, log *zap.Logger) (*Handler, error) {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	h := &Handler{store: rdb.New(rc), log: log, clock: fleetclock.New(o.Clock), name: processName()}
	o.Clock = h.clock.Now // Redis's time, once Start measured it
	h.o = o
	api, err := versions.For(crm.Env{Client: boundCRM{judgedCRM{Client: client, obs: o.Observer, tr: o.Tracer}, h},
		Store: h.store, Timeout: o.CRMTimeout, Clock: o.Clock, Log: log})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	h.api = api
	return h, nil
}

var _ asynq.Handler = (*Handler)(nil)

// ProcessTask runs one delivery of a lead.TaskType task. It returns nil
// when the CRM has the lead (now or before), an error wrapping
// asynq.SkipRetry when the lead is dead, a *DelayError to run again
// without spending an attempt, or another error to retry with backoff.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := h.o.Codec.Decode(t.Payload())
	var unknown *seal.UnknownKeyError
	switch {
	case errors.As(err, &unknown):
		// The lead is whole; this worker lacks its key (a rotation rolled
		// out to the producers first): wait without spending attempts.
		h.log.Error("lead sealed under a data key this worker does not hold; add it to LEADRELAY_DATA_KEYS",
			zap.String("key", unknown.ID))
		return &DelayError{Delay: h.o.BreakerCooldown, Reason: delivery.Reason{Code: delivery.KeyMissing}, Err: err}
	case err != nil:
		h.log.Error("broken lead payload", zap.Error(err))
		return &deadError{reason: delivery.Reason{Code: delivery.PayloadBroken}, err: err}
	}
	retried, _ := asynq.GetRetryCount(ctx)
	r := run{p: p, token: newToken(), start: h.o.Clock(),
		log: h.log.With(zap.String("lead_id", p.ID), zap.String("site", p.Site), zap.Int("attempt", retried+1))}
	if w := t.ResultWriter(); w != nil {
		r.task = w.TaskID()
	}
	ctx, end := h.traceRun(ctx, p, retried+1)
	defer func() { end(err) }()
	err = h.deliver(ctx, &r)
	if err != nil {
		err = h.settle(ctx, &r, err)
	} else {
		if !r.resultKept {
			keepResult(t, &r)
		}
		h.stripLater(r.task, h.o.IDKey.SentSum(h.api.SentHash(r.p)))
	}
	if !r.recorded {
		h.recordRun(ctx, &r, err)
	}
	return err
}

// keepResult writes the CRM id of the lead this run delivered as the
// task's result, which asynqmon's Result column shows (the ops UI
// formats it as crm_id=N), when Finish did not (a Cluster). Losing it
// loses only that view: the delivered marker holds the id. A task not
// run by an asynq server has no writer.
func keepResult(t *asynq.Task, r *run) {
	w := t.ResultWriter()
	if w == nil || r.crmID == 0 {
		return
	}
	if _, err := w.Write([]byte(strconv.FormatInt(r.crmID, 10))); err != nil {
		r.log.Warn("the CRM id could not be kept as the task's result", zap.Error(err))
	}
}

// errCatchUp: the API version holds a send back until its look-up's
// bookkeeping caught up (crm.API.Saw).
var errCatchUp = errors.New("worker: the CRM look-up's bookkeeping must catch up before a send")

// catchUpWait is how long a run is postponed that keeps being held back
// for a catch-up.
const catchUpWait = 200 * time.Millisecond

// deliver is one run: begin, then look up an uncertain earlier add or
// send, then record. A send the API version holds back waits for its
// catch-up, twice at most. Every error it returns goes to settle.
func (h *Handler) deliver(ctx context.Context, r *run) error {
	for try := 0; ; try++ {
		err := h.deliverOnce(ctx, r)
		if !errors.Is(err, errCatchUp) {
			return err
		}
		if try == 2 {
			return &DelayError{Delay: catchUpWait, Reason: delivery.Reason{Code: delivery.JournalWait}}
		}
		if err := h.api.CatchUp(ctx); err != nil {
			return &lookupError{err}
		}
	}
}

// deliverOnce begins the run, holds the lead's lock while the circuit
// admits the CRM call, looks up an uncertain earlier add, and sends.
func (h *Handler) deliverOnce(ctx context.Context, r *run) error {
	epoch := h.rollback.count.Load()
	b, err := h.begin(ctx, r)
	if err != nil || !b.Locked {
		return err
	}
	h.sawEpoch(ctx, epoch, b)
	if err := h.caughtUp(ctx, r, b); err != nil {
		return err
	}
	if err := h.replicated(ctx, r, b); err != nil {
		return err
	}
	hd := h.hold(ctx, r, b)
	defer hd.lease.stop()
	probe, err := h.admit(ctx, b.Circuit)
	if err != nil {
		hd.release(ctx, hd.unsend)
		return err
	}
	if !b.Send {
		if done, err := h.lookUpFirst(ctx, r, b.Attempt, hd); done || err != nil {
			return err
		}
	} else if h.rollback.guarded(r.p.ReceivedAt, h.o.Clock()) {
		if done, err := h.lookUpRolledBack(ctx, r, b.Attempt, hd); done || err != nil {
			return err
		}
	}
	return h.send(ctx, r, b, hd, probe)
}

// begin starts the run with one round trip (rdb.Store.Begin), asking for
// what the API version's capabilities name. The Begun it returns holds the
// lock, or holds none when the lead was delivered already (nil error) or
// another worker has it (the error).
func (h *Handler) begin(ctx context.Context, r *run) (rdb.Begun, error) {
	p, caps := r.p, h.api.Caps()
	sctx, end := h.traceStep(ctx, tracing.SpanBegin)
	b, err := h.store.Begin(sctx, rdb.BeginArgs{ID: p.ID, Token: r.token, Now: h.o.Clock(),
		LockTTL: h.o.LockTTL, RecordTTL: h.o.DeliveredTTL,
		Watermark: h.api.Watermark(), CountSend: caps.CountSends, ReadTop: caps.DeliveredTop})
	end(err)
	if err != nil {
		return b, crm.StoreErr("begin delivery", err)
	}
	h.health.saw(b.Circuit, h.o.Clock(), h.o.Observer)
	switch {
	case b.Marker != nil && lead.SameContent(b.Marker.Sum, p.Sum, &p.Lead):
		h.duplicate(p.Site, b.Marker, r.log)
		return b, nil
	case b.Marker != nil:
		// The id was delivered with other content: the idempotency key was
		// reused after its admission record expired. A different lead.
		r.log.Warn("delivered marker records other content; delivering this lead as a new one",
			zap.Int64("old_crm_id", b.Marker.CRMID))
		if err := h.store.DropMarker(ctx, p.ID, b.Marker); err != nil {
			return b, crm.StoreErr("drop stale marker", err)
		}
		return b, &DelayError{Delay: time.Millisecond, Reason: delivery.Reason{Code: delivery.StaleMarker}}
	case b.Busy > 0:
		return b, &DelayError{Delay: b.Busy, Reason: delivery.Reason{Code: delivery.LockBusy}}
	}
	return b, nil
}

// caughtUp tells the API version what Begin read for it; a send it holds
// back (crm.API.Saw) undoes Begin's write-ahead and returns errCatchUp.
func (h *Handler) caughtUp(ctx context.Context, r *run, b rdb.Begun) error {
	if !h.api.Saw(b) {
		return nil
	}
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	if _, err := h.store.Release(bctx, r.p.ID, r.token, rdb.Release{Mode: rdb.ReleaseUnsend}); err != nil {
		return crm.StoreErr("release for a journal refresh", err)
	}
	return errCatchUp
}

// replicated waits, with WaitReplicas, until that many Redis replicas hold
// the "sending" record Begin wrote ahead of a send, so a failover cannot
// forget the send; without them the write-ahead is undone and the run
// postponed.
func (h *Handler) replicated(ctx context.Context, r *run, b rdb.Begun) error {
	if !b.Send || h.o.WaitReplicas <= 0 {
		return nil
	}
	err := h.store.Sync(ctx, h.o.WaitReplicas, h.o.WaitTimeout)
	if err == nil {
		return nil
	}
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	_, _ = h.store.Release(bctx, r.p.ID, r.token, rdb.Release{Mode: rdb.ReleaseUnsend})
	return &DelayError{Delay: backpressureDelay, Reason: delivery.Reason{Code: delivery.Replicas},
		Err: crm.StoreErr("wait for replicas", err)}
}

// admit asks the fleet's circuit whether the CRM may be called; probe
// says this call is the half-open probe.
func (h *Handler) admit(ctx context.Context, c rdb.Circuit) (probe bool, err error) {
	switch {
	case c.Wait > 0 && !c.Problem.IsZero():
		return false, &DelayError{Delay: c.Wait, Reason: c.Problem}
	case c.Wait > 0 && c.Probing:
		return false, &DelayError{Delay: h.probeWait(c.Wait), Reason: delivery.Reason{Code: delivery.CircuitOpen}}
	case c.Wait > 0:
		return false, &DelayError{Delay: c.Wait, Reason: delivery.Reason{Code: delivery.CircuitOpen}}
	case !c.ProbeDue:
		return false, nil
	}
	ok, err := h.store.ClaimProbe(ctx, h.o.Clock(), h.o.CRMTimeout)
	if err != nil {
		return false, crm.StoreErr("claim circuit probe", err)
	}
	if !ok {
		return false, &DelayError{Delay: h.probeWait(h.o.CRMTimeout), Reason: delivery.Reason{Code: delivery.CircuitOpen}}
	}
	return true, nil
}

// send adds the lead once the Limiter admits it, tells the Limiter how the
// CRM coped, and records the answer.
func (h *Handler) send(ctx context.Context, r *run, b rdb.Begun, hd *hold, probe bool) error {
	crmDone, err := h.acquireCRM(ctx)
	if err != nil {
		hd.release(ctx, hd.unsend)
		return err
	}
	defer crmDone(CRMAbandoned) // a backstop; the calls below report first

	p := r.p
	if ce := r.log.Check(zap.DebugLevel, "sending lead"); ce != nil {
		ce.Write(zap.String("title", p.Lead.Title), zap.String("email", p.Lead.Email),
			zap.String("phone", p.Lead.Phone), zap.String("company", p.Lead.Company))
	}
	r.adds++
	id, err := h.api.Add(ctx, p)
	if err != nil {
		return h.addFailed(ctx, r, hd, err, probe, crmDone)
	}
	crmDone(CRMAnswered)
	h.health.worked(ctx, h, probe || b.Circuit.Exists || h.health.failing())
	return h.delivered(ctx, r, rdb.Marker{CRMID: id, LeadID: p.ID, Site: p.Site, Sum: p.Sum}, b.Attempt.Dead, hd.lease)
}

// addFailed tells the circuit and the Limiter (crmDone) how an add failed,
// and records it. A failure that follows its lead (crmFailed) is no load
// signal: the Limiter learns nothing from it. An uncertain add leaves the
// lead to be looked up: after ReconcileAfter, or at once when the CRM's
// request is over (lookUpNow).
func (h *Handler) addFailed(ctx context.Context, r *run, hd *hold, err error, probe bool, crmDone func(CRMOutcome)) error {
	f := judge(err)
	out := crmOutcome(ctx, err)
	if !h.crmFailed(ctx, r, err, f, probe) {
		out = CRMAbandoned
	}
	crmDone(out)
	rel := rdb.Release{Mode: rdb.ReleaseSet, State: rdb.StateFailed}
	if f.out == delivery.Uncertain {
		rel.State, r.state = rdb.StateUncertain, rdb.StateUncertain
		rel.SettleAt = h.o.Clock().Add(h.o.ReconcileAfter)
		if f.class == crmclient.ClassAnswered {
			rel.SettleAt = h.o.Clock() // the request is over: look it up at once
		}
	}
	hd.release(ctx, rel)
	if f.class == crmclient.ClassAnswered {
		return h.lookUpNow(ctx, r, err)
	}
	return err
}

// delivered records the marker (retrying a few times: the CRM has the lead
// now, and losing that fact risks a second add) and logs the delivery.
// wasDead says the lead died before (an operator re-ran it): its
// dead-letter record goes.
func (h *Handler) delivered(ctx context.Context, r *run, m rdb.Marker, wasDead bool, lk *lease) error {
	lk.stop()
	now := h.o.Clock()
	m.At = now.UTC()
	var (
		f   rdb.Finished
		err error
	)
	fa := rdb.FinishArgs{Marker: m, Token: r.token, TTL: h.o.DeliveredTTL,
		ClaimTTL: crm.ClaimRetention, Day: now.UTC().Format("2006-01-02"), Queue: h.o.Queue,
		Legacy: !h.current.Load(),
		Run: &delivery.Run{At: r.start, Worker: h.name, End: delivery.RunDelivered, CRMID: m.CRMID,
			Duration: now.Sub(r.start), Adds: r.adds, LookUps: r.lookUps}}
	if r.task == m.LeadID {
		fa.Result = strconv.FormatInt(m.CRMID, 10)
	}
	sctx, end := h.traceStep(ctx, tracing.SpanFinish)
	for i := range markerWrites {
		if i > 0 {
			time.Sleep(time.Duration(50<<i) * time.Millisecond)
		}
		bctx, cancel := bookkeeping(sctx)
		f, err = h.store.Finish(bctx, fa)
		cancel()
		if err == nil {
			break
		}
	}
	end(err)
	if err != nil {
		r.log.Error("delivered to the CRM but the delivered marker could not be recorded; the next run reconciles",
			zap.Int64("crm_id", m.CRMID), zap.Error(err))
		return &DelayError{Delay: backpressureDelay, Reason: delivery.Reason{Code: delivery.MarkerNotRecorded},
			Err: crm.StoreErr("record delivery", err)}
	}
	if f.Old != nil && f.Old.CRMID != m.CRMID {
		r.log.Error("lead delivered twice", zap.Int64("crm_id", m.CRMID), zap.Int64("first_crm_id", f.Old.CRMID))
		m = *f.Old
	}
	if f.Fence == rdb.Fenced {
		r.log.Warn("delivered after another run took the lead over; the marker is recorded, its record left to that run",
			zap.Int64("crm_id", m.CRMID))
	}
	if f.ClaimedBy != "" {
		r.log.Error("CRM id already claimed by another lead's look-up", zap.Int64("crm_id", m.CRMID),
			zap.String("claimed_by", f.ClaimedBy))
	}
	r.crmID = m.CRMID
	r.recorded, r.resultKept = true, f.ResultKept || fa.Result == ""
	h.stats.delivered.Add(1)
	h.observeDelivered(r.p, m)
	if wasDead && h.o.DeadLetters != nil {
		if err := h.o.DeadLetters.Forget(context.WithoutCancel(ctx), r.p.ID); err != nil {
			r.log.Warn("delivered lead not removed from the dead-letter store", zap.Error(err))
		}
	}
	r.log.Info("delivered", zap.Int64("crm_id", m.CRMID), zap.String("via", viaName(m.Via)))
	return nil
}

func viaName(v string) string {
	if v == "" {
		return "add"
	}
	return v
}

// duplicate acknowledges a task whose lead is delivered already.
func (h *Handler) duplicate(site string, m *rdb.Marker, log *zap.Logger) {
	h.stats.duplicates.Add(1)
	h.o.Observer.Delivery(site, DeliveryDuplicateSkipped)
	log.Info("duplicate skipped", zap.Int64("crm_id", m.CRMID))
}

// crmFailed feeds a failed CRM call to the fleet's circuit: transient and
// uncertain failures count towards opening it, a configuration problem
// opens it for everyone, any other answer shows the CRM is reachable. It
// reports whether the failure is the fleet's: false when it follows its
// lead (rdb.CircuitLeadFault: the lead failed before and the CRM worked
// for others since), which is the lead's alone (see the package doc,
// "Poison leads").
func (h *Handler) crmFailed(ctx context.Context, r *run, err error, f failure, probe bool) (shared bool) {
	bctx, cancel := bookkeeping(ctx)
	defer cancel()
	switch f.class {
	case crmclient.ClassTransient, crmclient.ClassAmbiguous, crmclient.ClassAnswered:
		a := h.circuitArgs()
		a.Lead = r.p.ID
		st, berr := h.store.CircuitFailed(bctx, a)
		switch {
		case berr != nil:
			r.log.Warn("circuit breaker update failed", zap.Error(berr))
		case st == rdb.CircuitLeadFault:
			h.stats.leadFaults.Add(1)
			r.log.Info("the lead failed again while the CRM works for others: its own failure, not the CRM's",
				logFields(f)...)
			return false
		default:
			h.health.failed()
			h.o.Observer.CRMCircuitOpen(st != rdb.CircuitClosed)
		}
		if st == rdb.CircuitOpened {
			r.log.Warn("CRM circuit opened: deliveries pause without spending attempts",
				append(logFields(f), zap.Duration("cooldown", h.o.BreakerCooldown), zap.Error(err))...)
			h.o.outage(true, f.reason)
		}
	case crmclient.ClassConfig:
		h.health.problem(bctx, h, f.reason)
	case crmclient.ClassRateLimited:
		h.honourRetryAfter(bctx, err, r.log)
	default:
		if probe {
			h.health.worked(bctx, h, true)
		}
	}
	return true
}

func (h *Handler) circuitArgs() rdb.CircuitArgs {
	return rdb.CircuitArgs{Now: h.o.Clock(), Threshold: h.o.BreakerThreshold, Cooldown: h.o.BreakerCooldown,
		TTL: 10 * (h.o.BreakerCooldown + h.o.CRMTimeout)}
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
