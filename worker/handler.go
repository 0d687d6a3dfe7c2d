package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/crm/versions"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// bookkeepingTimeout bounds each Redis write after the CRM call. Those
// writes run even when the task's context is done: the CRM's answer must
// be recorded.
const bookkeepingTimeout = 5 * time.Second

// markerWrites is how often a delivered marker is tried before giving up.
const markerWrites = 4

// reconcileSettle is added to CRMTimeout for the least ReconcileAfter, so
// the earlier request cannot still be in flight on our side.
const reconcileSettle = time.Second

// Handler delivers lead tasks to the CRM. It implements asynq.Handler and is
// safe for concurrent use. Build it with NewHandler.
type Handler struct {
	api   crm.API // the CRM's API version: add, look-up, preflight
	store *rdb.Store
	o     Options
	log   *zap.Logger

	stats   counters
	health  health
	current atomic.Bool // only workers of this version serve the queue (see watchFleet)
}

// NewHandler returns a Handler that adds leads through client and keeps
// its state in rc. Zero fields of o take their defaults. It fails when
// LeadRelay does not know the API version client speaks.
func NewHandler(client crm.Client, rc redis.UniversalClient, o Options, log *zap.Logger) (*Handler, error) {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	h := &Handler{store: rdb.New(rc), o: o, log: log}
	api, err := versions.For(crm.Env{Client: boundCRM{judgedCRM{Client: client, obs: o.Observer}, h},
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
	p, err := lead.ParsePayload(t.Payload())
	if err != nil {
		h.log.Error("broken lead payload", zap.Error(err))
		return &deadError{reason: delivery.Reason{Code: delivery.PayloadBroken}, err: err}
	}
	retried, _ := asynq.GetRetryCount(ctx)
	r := run{p: p, token: newToken(),
		log: h.log.With(zap.String("lead_id", p.ID), zap.String("site", p.Site), zap.Int("attempt", retried+1))}
	err = h.deliver(ctx, &r)
	if err == nil {
		return nil
	}
	return h.settle(ctx, r, err)
}

// deliver is one run: begin, then look up an uncertain earlier add or
// send, then record. Every error it returns goes to settle.
func (h *Handler) deliver(ctx context.Context, r *run) error {
	for try := 0; ; try++ {
		err := h.deliverOnce(ctx, r)
		if !errors.Is(err, errJournalDue) {
			return err
		}
		if try == 2 {
			return &DelayError{Delay: journalWait, Reason: delivery.Reason{Code: delivery.JournalWait}}
		}
		if err := h.api.CatchUp(ctx); err != nil {
			return &lookupError{err}
		}
	}
}

// errJournalDue: the API version holds a send back until its look-up's
// bookkeeping caught up (crm.API.Saw).
var errJournalDue = errors.New("worker: the CRM look-up's bookkeeping must catch up before a send")

// journalWait is how long a run is postponed that keeps being held back
// for a catch-up.
const journalWait = 200 * time.Millisecond

func (h *Handler) deliverOnce(ctx context.Context, r *run) error {
	p, caps := r.p, h.api.Caps()
	b, err := h.store.Begin(ctx, rdb.BeginArgs{ID: p.ID, Token: r.token, Now: h.o.Clock(),
		LockTTL: h.o.LockTTL, RecordTTL: h.o.DeliveredTTL,
		Watermark: h.api.Watermark(), CountSend: caps.CountSends, ReadTop: caps.DeliveredTop})
	if err != nil {
		return storeErr("begin delivery", err)
	}
	h.health.saw(b.Circuit, h.o.Clock(), h.o.Observer)
	switch {
	case b.Marker != nil && b.Marker.Matches(p.Sum):
		h.duplicate(p.Site, b.Marker, r.log)
		return nil
	case b.Marker != nil:
		// The id was delivered with other content: the idempotency key was
		// reused after its admission record expired. A different lead.
		r.log.Warn("delivered marker records other content; delivering this lead as a new one",
			zap.Int64("old_crm_id", b.Marker.CRMID))
		if err := h.store.DropMarker(ctx, p.ID, b.Marker); err != nil {
			return storeErr("drop stale marker", err)
		}
		return &DelayError{Delay: time.Millisecond, Reason: delivery.Reason{Code: delivery.StaleMarker}}
	case b.Busy > 0:
		return &DelayError{Delay: b.Busy, Reason: delivery.Reason{Code: delivery.LockBusy}}
	}
	if h.api.Saw(b) {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
		defer cancel()
		if _, err := h.store.Release(bctx, p.ID, r.token, rdb.Release{Mode: rdb.ReleaseUnsend}); err != nil {
			return storeErr("release for a journal refresh", err)
		}
		return errJournalDue
	}
	if b.Send && h.o.WaitReplicas > 0 {
		if err := h.store.Sync(ctx, h.o.WaitReplicas, h.o.WaitTimeout); err != nil {
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
			defer cancel()
			_, _ = h.store.Release(bctx, p.ID, r.token, rdb.Release{Mode: rdb.ReleaseUnsend})
			return &DelayError{Delay: backpressureDelay, Reason: delivery.Reason{Code: delivery.Replicas},
				Err: storeErr("wait for replicas", err)}
		}
	}

	// We hold the lock: every path below releases it or finishes.
	lk := h.keepLock(ctx, p.ID, r.token, r.log)
	defer lk.stop()
	r.state = b.Attempt.State
	unsend := rdb.Release{Mode: rdb.ReleaseKeep}
	if b.Send {
		unsend.Mode = rdb.ReleaseUnsend
		r.state = rdb.StateFailed
	}
	release := func(rel rdb.Release) {
		lk.stop()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
		defer cancel()
		switch f, err := h.store.Release(bctx, p.ID, r.token, rel); {
		case err != nil:
			r.log.Warn("lock release failed; it expires by itself", zap.Error(err))
		case f == rdb.Fenced:
			r.log.Warn("another run took the lead over; this run's record was left to it")
		}
	}

	probe, err := h.admit(ctx, b.Circuit)
	if err != nil {
		release(unsend)
		return err
	}

	if !b.Send {
		// An earlier add may have stored the lead: find out first.
		r.state = b.Attempt.State
		settleAt := b.Attempt.SettleAt
		if settleAt.IsZero() {
			settleAt = b.Attempt.SentAt.Add(h.o.ReconcileAfter)
		}
		if wait := settleAt.Sub(h.o.Clock()); wait > 0 {
			release(unsend)
			return &DelayError{Delay: wait, Reason: delivery.Reason{Code: delivery.LookUpWait}}
		}
		done, err := h.settleUncertain(ctx, r, b.Attempt, lk, release)
		if done || err != nil {
			return err
		}
		unsend.Mode, r.state = rdb.ReleaseUnsend, rdb.StateFailed
	}

	crmDone, err := h.acquireCRM(ctx)
	if err != nil {
		release(unsend)
		return err
	}
	defer crmDone(context.Canceled) // a backstop; the call below reports first

	if ce := r.log.Check(zap.DebugLevel, "sending lead"); ce != nil {
		ce.Write(zap.String("title", p.Lead.Title), zap.String("email", p.Lead.Email),
			zap.String("phone", p.Lead.Phone), zap.String("company", p.Lead.Company))
	}
	id, err := h.api.Add(ctx, p)
	crmDone(err)
	if err == nil {
		h.health.worked(ctx, h, probe || b.Circuit.Exists)
		return h.delivered(ctx, r, rdb.Marker{CRMID: id, LeadID: p.ID, Site: p.Site, Sum: p.Sum}, b.Attempt.Dead, lk)
	}
	f := judge(err)
	rel := rdb.Release{Mode: rdb.ReleaseSet, State: rdb.StateFailed}
	if f.out == delivery.Uncertain {
		rel.State, r.state = rdb.StateUncertain, rdb.StateUncertain
		rel.SettleAt = h.o.Clock().Add(h.o.ReconcileAfter)
		if f.class == crmclient.ClassAnswered {
			rel.SettleAt = h.o.Clock() // the request is over: look it up at once
		}
	}
	release(rel)
	h.crmFailed(ctx, r, err, f, probe)
	if f.class == crmclient.ClassAnswered {
		return h.lookUpNow(ctx, r, err)
	}
	return err
}

// lookUpNow follows an add that got a complete but unclear answer (HTTP
// 500 or 502, an error page): the CRM's request is over, so the lead is
// looked up in the same run instead of waiting. A look-up that finds it
// records the delivery; one that cannot tell leaves the lead uncertain for
// the next run.
func (h *Handler) lookUpNow(ctx context.Context, r *run, addErr error) error {
	if h.api.Caps().CheckErrorPages {
		if problem := h.health.preflightAfterError(ctx, h, addErr); !problem.IsZero() {
			return &DelayError{Delay: h.o.BreakerCooldown, Reason: problem, Err: addErr}
		}
	}
	b, err := h.store.Begin(ctx, rdb.BeginArgs{ID: r.p.ID, Token: r.token, Now: h.o.Clock(),
		LockTTL: h.o.LockTTL, RecordTTL: h.o.DeliveredTTL})
	if err != nil || !b.Locked || b.Send {
		if b.Locked {
			_, _ = h.store.Release(context.WithoutCancel(ctx), r.p.ID, r.token, rdb.Release{Mode: rdb.ReleaseUnsend})
		}
		return addErr // someone else has it, or it is no longer uncertain
	}
	lk := h.keepLock(ctx, r.p.ID, r.token, r.log)
	defer lk.stop()
	release := func(rel rdb.Release) {
		lk.stop()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
		defer cancel()
		_, _ = h.store.Release(bctx, r.p.ID, r.token, rel)
	}
	res, lerr := h.api.LookUp(ctx, r.p, b.Attempt)
	h.stats.reconcile(res, lerr)
	id := res.CRMID
	if lerr == nil {
		r.log.Info("reconciled at once", zap.String("reconcile", res.Finding.String()), zap.Int64("crm_id", id),
			zap.String("crm_api", string(h.api.Version())))
	}
	switch {
	case lerr != nil:
		release(rdb.Release{Mode: rdb.ReleaseKeep})
		return addErr
	case res.Finding == crm.Found:
		return h.delivered(ctx, r, rdb.Marker{CRMID: id, LeadID: r.p.ID, Site: r.p.Site, Sum: r.p.Sum, Via: "reconcile"}, b.Attempt.Dead, lk)
	case res.Finding == crm.NotFound:
		// Certainly not stored: the next run sends without a look-up.
		r.state = rdb.StateFailed
		release(rdb.Release{Mode: rdb.ReleaseSet, State: rdb.StateFailed})
		return addErr
	}
	release(rdb.Release{Mode: rdb.ReleaseKeep})
	return addErr
}

// settleUncertain looks up a lead whose earlier add is uncertain. done
// means the run is over (recorded as delivered, or the returned error);
// otherwise the attempt record says "sending" again and the caller sends.
func (h *Handler) settleUncertain(ctx context.Context, r *run, a rdb.Attempt, lk *lease, release func(rdb.Release)) (bool, error) {
	p := r.p
	res, err := h.api.LookUp(ctx, p, a)
	h.stats.reconcile(res, err)
	id := res.CRMID
	if err != nil {
		release(rdb.Release{Mode: rdb.ReleaseKeep})
		return true, &lookupError{err}
	}
	r.log.Info("reconciled", zap.String("reconcile", res.Finding.String()), zap.Int64("crm_id", id),
		zap.Int("sends", a.Sends), zap.String("crm_api", string(h.api.Version())))
	switch {
	case res.Finding == crm.Found:
		return true, h.delivered(ctx, r, rdb.Marker{CRMID: id, LeadID: p.ID, Site: p.Site, Sum: p.Sum, Via: "reconcile"}, a.Dead, lk)
	case res.Finding == crm.CannotTell && h.o.ReconcileUnknown == ReconcileDead:
		release(rdb.Release{Mode: rdb.ReleaseKeep})
		return true, &deadError{reason: delivery.Reason{Code: delivery.LookUpUnknown}}
	}
	// Not found, or unknown with the resend policy: send again.
	m, err := h.store.MarkSending(ctx, p.ID, r.token, h.o.Clock(), h.o.DeliveredTTL, h.api.Watermark())
	switch {
	case err != nil:
		release(rdb.Release{Mode: rdb.ReleaseKeep})
		return true, storeErr("record attempt", err)
	case m.Marker != nil:
		release(rdb.Release{Mode: rdb.ReleaseKeep})
		h.duplicate(p.Site, m.Marker, r.log)
		return true, nil
	case m.Fence == rdb.Fenced:
		// Our lock expired during the look-up and another run took the
		// lead over: it decides, and this run must not send.
		release(rdb.Release{Mode: rdb.ReleaseKeep})
		return true, &DelayError{Delay: h.o.LockTTL, Reason: delivery.Reason{Code: delivery.LockBusy}}
	}
	return false, nil
}

// admit asks the fleet's circuit whether the CRM may be called; probe
// says this call is the half-open probe.
func (h *Handler) admit(ctx context.Context, c rdb.Circuit) (probe bool, err error) {
	switch {
	case c.Wait > 0 && !c.Problem.IsZero():
		return false, &DelayError{Delay: c.Wait, Reason: c.Problem}
	case c.Wait > 0:
		return false, &DelayError{Delay: c.Wait, Reason: delivery.Reason{Code: delivery.CircuitOpen}}
	case !c.ProbeDue:
		return false, nil
	}
	ok, err := h.store.ClaimProbe(ctx, h.o.Clock(), h.o.CRMTimeout)
	if err != nil {
		return false, storeErr("claim circuit probe", err)
	}
	if !ok {
		return false, &DelayError{Delay: h.o.CRMTimeout, Reason: delivery.Reason{Code: delivery.CircuitOpen}}
	}
	return true, nil
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
	base := context.WithoutCancel(ctx)
	for i := range markerWrites {
		if i > 0 {
			time.Sleep(time.Duration(50<<i) * time.Millisecond)
		}
		bctx, cancel := context.WithTimeout(base, bookkeepingTimeout)
		f, err = h.store.Finish(bctx, rdb.FinishArgs{Marker: m, Token: r.token, TTL: h.o.DeliveredTTL,
			ClaimTTL: crm.ClaimRetention, Day: now.UTC().Format("2006-01-02"), Queue: h.o.Queue,
			Legacy: !h.current.Load()})
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		r.log.Error("delivered to the CRM but the delivered marker could not be recorded; the next run reconciles",
			zap.Int64("crm_id", m.CRMID), zap.Error(err))
		return &DelayError{Delay: backpressureDelay, Reason: delivery.Reason{Code: delivery.MarkerNotRecorded},
			Err: storeErr("record delivery", err)}
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
	h.stats.delivered.Add(1)
	h.observeDelivered(r.p, m)
	if wasDead && h.o.DeadLetters != nil {
		if err := h.o.DeadLetters.Forget(base, r.p.ID); err != nil {
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
// opens it for everyone, any other answer shows the CRM is reachable.
func (h *Handler) crmFailed(ctx context.Context, r *run, err error, f failure, probe bool) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	switch f.class {
	case crmclient.ClassTransient, crmclient.ClassAmbiguous, crmclient.ClassAnswered:
		st, berr := h.store.CircuitFailed(bctx, h.circuitArgs())
		if berr != nil {
			r.log.Warn("circuit breaker update failed", zap.Error(berr))
			break
		}
		h.o.Observer.CRMCircuitOpen(st != rdb.CircuitClosed)
		if st == rdb.CircuitOpened {
			r.log.Warn("CRM circuit opened: deliveries pause without spending attempts",
				append(logFields(f), zap.Duration("cooldown", h.o.BreakerCooldown), zap.Error(err))...)
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

// lease keeps a held lock alive until stopped: the CRM call may outlast
// LockTTL, and a lock that expired mid-call would let a second worker in.
type lease struct {
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
	lost     atomic.Bool
}

func (h *Handler) keepLock(ctx context.Context, id, token string, log *zap.Logger) *lease {
	l := &lease{stopCh: make(chan struct{}), done: make(chan struct{})}
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer close(l.done)
		t := time.NewTicker(h.o.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stopCh:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(ctx, h.o.LockTTL/3)
				ok, err := h.store.Renew(rctx, id, token, h.o.LockTTL)
				cancel()
				switch {
				case err != nil:
					log.Warn("lock renewal failed", zap.Error(err))
				case !ok:
					// Another worker may take over, but it waits
					// ReconcileAfter after our send before it looks up.
					l.lost.Store(true)
					log.Warn("lock lost during delivery")
					return
				}
			}
		}
	}()
	return l
}

// stop ends the renewal and waits for it; safe to call twice.
func (l *lease) stop() {
	l.stopOnce.Do(func() { close(l.stopCh) })
	<-l.done
}
