package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

// bookkeepingTimeout bounds each Redis write after the CRM call. Those
// writes run even when the task's context is done: the CRM's answer must
// be recorded.
const bookkeepingTimeout = 5 * time.Second

// markerWrites is how often a delivered marker is tried before giving up.
const markerWrites = 4

// configLogEvery limits the configuration-problem error log per process.
const configLogEvery = time.Minute

// Handler delivers lead tasks to the CRM. It implements asynq.Handler and is
// safe for concurrent use. Build it with NewHandler.
type Handler struct {
	crm CRM
	rdb redis.UniversalClient
	o   Options
	log *zap.Logger

	stats counters

	configMu     sync.Mutex
	configHint   string    // last configuration problem, "" after a success
	configLogged time.Time // when it was last logged
}

// NewHandler returns a Handler that adds leads through crm and keeps its
// state in rdb. Zero fields of o take their defaults.
func NewHandler(crm CRM, rdb redis.UniversalClient, o Options, log *zap.Logger) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	if _, nop := o.Observer.(nopObserver); !nop {
		crm = observedCRM{CRM: crm, obs: o.Observer}
	}
	return &Handler{crm: crm, rdb: rdb, o: o, log: log}
}

var _ asynq.Handler = (*Handler)(nil)

// ProcessTask delivers one lead.TaskType task. It returns nil when the CRM
// has the lead (now or before), an error wrapping asynq.SkipRetry when the
// lead can never be delivered, a *DelayError to retry without spending an
// attempt, or another error to retry with backoff.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := lead.ParsePayload(t.Payload())
	if err != nil {
		h.log.Error("broken lead payload", zap.Error(err))
		return fmt.Errorf("dead: broken payload: %w: %w", err, asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	log := h.log.With(zap.String("lead_id", p.ID), zap.String("site", p.Site), zap.Int("attempt", retried+1))
	return h.deliver(ctx, t, p, log)
}

func (h *Handler) deliver(ctx context.Context, t *asynq.Task, p lead.Payload, log *zap.Logger) error {
	token := newToken()
	g, err := h.begin(ctx, p.ID, token)
	switch {
	case err != nil:
		return storeErr("check delivered", err)
	case g.marker != nil:
		h.duplicate(t, g.marker, log)
		return nil
	case g.busy > 0:
		return &DelayError{Delay: g.busy, Reason: "another worker is delivering this lead"}
	}

	// We hold the lock; every path below releases it.
	lk := h.keepLock(ctx, p.ID, token, log)
	done := func(state string) {
		lk.stop()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
		defer cancel()
		if err := h.release(bctx, p.ID, token, state); err != nil {
			log.Warn("lock release failed; it expires by itself", zap.Error(err))
		}
	}

	ticket := g.ticket
	if ticket.wait > 0 {
		done("")
		return &DelayError{Delay: ticket.wait, Reason: "CRM circuit open"}
	}

	if g.attempt.uncertain() {
		if wait := g.attempt.sentAt.Add(h.o.ReconcileAfter).Sub(h.o.Clock()); wait > 0 {
			done("")
			return &DelayError{Delay: wait, Reason: "waiting for the earlier request to settle before reconciling"}
		}
		id, res, err := h.reconcile(ctx, p, g.attempt)
		h.stats.reconcile(res, err)
		if err != nil {
			done("")
			return h.failed(ctx, p, log, &reconcileError{err}, ticket)
		}
		log.Info("reconciled", zap.String("reconcile", res.String()), zap.Int64("crm_id", id),
			zap.Int("sends", g.attempt.sends), zap.String("crm_api", string(h.crm.Version())))
		switch {
		case res == reconcileFound:
			lk.stop()
			return h.delivered(ctx, t, p, log, Marker{CRMID: id, LeadID: p.ID, Via: "reconcile"}, token, g.attempt.dead)
		case res == reconcileUnknown && h.o.ReconcileUnknown == ReconcileDead:
			done("")
			h.keepDead(ctx, p, "reconcile could not tell whether the CRM stored the lead", log)
			return fmt.Errorf("dead: reconcile could not tell whether the CRM stored the lead (LEADRELAY_RECONCILE_UNKNOWN=dead): %w", asynq.SkipRetry)
		}
		// Not found, or unknown with the resend policy: send again.
	}

	release, err := h.acquire(ctx)
	if err != nil {
		done("")
		return h.failed(ctx, p, log, err, ticket)
	}
	release = sync.OnceFunc(release)
	defer release()
	if m, err := h.markSending(ctx, p.ID, h.o.Clock()); err != nil {
		done("")
		return storeErr("record attempt", err)
	} else if m != nil {
		done("")
		h.duplicate(t, m, log)
		return nil
	}

	log.Debug("sending lead", zap.String("title", p.Lead.Title), zap.String("email", p.Lead.Email),
		zap.String("phone", p.Lead.Phone), zap.String("company", p.Lead.Company))
	id, err := h.add(ctx, p)
	release()
	lk.stop()
	if err != nil {
		state := stateFailed
		if classify(err) == OutcomeAmbiguous {
			state = stateAmbiguous
		}
		done(state)
		return h.failed(ctx, p, log, err, ticket)
	}
	bctx, bcancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	if err := h.breakerSucceeded(bctx, ticket); err != nil {
		log.Warn("circuit breaker reset failed", zap.Error(err))
	}
	bcancel()
	h.clearConfigProblem()
	return h.delivered(ctx, t, p, log, Marker{CRMID: id, LeadID: p.ID}, token, g.attempt.dead)
}

// add sends the lead with the per-call timeout.
func (h *Handler) add(ctx context.Context, p lead.Payload) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.o.CRMTimeout)
	defer cancel()
	return h.crm.Add(ctx, crmLead(p, h.crm.Version()))
}

// delivered records the marker (retrying a few times: the CRM has the lead
// now, and losing that fact risks a second add), writes the task result and
// logs the delivery.
// wasDead says the lead died before (an operator re-ran it): its
// dead-letter record goes.
func (h *Handler) delivered(ctx context.Context, t *asynq.Task, p lead.Payload, log *zap.Logger, m Marker, token string, wasDead bool) error {
	m.At = h.o.Clock().UTC()
	claim := h.crm.Version() != crmclient.V2
	var (
		old *Marker
		err error
	)
	base := context.WithoutCancel(ctx)
	for i := range markerWrites {
		if i > 0 {
			time.Sleep(time.Duration(50<<i) * time.Millisecond)
		}
		bctx, cancel := context.WithTimeout(base, bookkeepingTimeout)
		old, err = h.finish(bctx, m, token, claim)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		log.Error("delivered to the CRM but the delivered marker could not be recorded; the next attempt reconciles",
			zap.Int64("crm_id", m.CRMID), zap.Error(err))
		return &unrecordedError{crmID: m.CRMID, err: err}
	}
	if old != nil && old.CRMID != m.CRMID {
		// Two adds landed: say so loudly, keep the first marker.
		log.Error("lead delivered twice", zap.Int64("crm_id", m.CRMID), zap.Int64("first_crm_id", old.CRMID))
		m = *old
	}
	h.stats.delivered.Add(1)
	h.observeDelivered(p, m)
	if wasDead {
		h.forgetDead(base, p, log)
	}
	h.writeResult(t, result{CRMID: m.CRMID, DeliveredAt: m.At}, log)
	log.Info("delivered", zap.Int64("crm_id", m.CRMID), zap.String("via", m.Via))
	return nil
}

// duplicate acknowledges a task whose lead is delivered already.
func (h *Handler) duplicate(t *asynq.Task, m *Marker, log *zap.Logger) {
	h.stats.duplicates.Add(1)
	h.o.Observer.Delivery(DeliveryDuplicateSkipped)
	log.Info("duplicate skipped", zap.Int64("crm_id", m.CRMID))
	h.writeResult(t, result{CRMID: m.CRMID, DeliveredAt: m.At, Duplicate: true}, log)
}

func (h *Handler) writeResult(t *asynq.Task, r result, log *zap.Logger) {
	w := t.ResultWriter()
	if w == nil {
		return
	}
	b, _ := json.Marshal(r)
	if _, err := w.Write(b); err != nil {
		log.Warn("task result not written", zap.Error(err))
	}
}

// failed turns a delivery error into what asynq should do, as classify
// decides, and feeds the circuit breaker.
func (h *Handler) failed(ctx context.Context, p lead.Payload, log *zap.Logger, err error, ticket breakerTicket) error {
	out := classify(err)
	log = log.With(zap.String("class", out.String()))
	log = log.With(crmFields(err)...)
	h.honourRetryAfter(ctx, err, log)
	if out == OutcomeRetry || out == OutcomeAmbiguous {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
		opened, berr := h.breakerFailed(bctx)
		cancel()
		switch {
		case berr != nil:
			log.Warn("circuit breaker update failed", zap.Error(berr))
		case opened:
			log.Warn("CRM circuit opened: deliveries pause without spending attempts",
				zap.Duration("cooldown", h.o.BreakerCooldown), zap.Error(err))
		}
	} else if ticket.probe && out != OutcomePause {
		// The CRM answered: it is reachable.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
		_ = h.breakerSucceeded(bctx, ticket)
		cancel()
	}
	switch out {
	case OutcomeDead:
		// Worker.handleError logs the dead letter at error level, once.
		log.Debug("lead is dead", zap.Error(err))
		h.keepDead(ctx, p, err.Error(), log)
		return fmt.Errorf("dead: %w: %w", err, asynq.SkipRetry)
	case OutcomePause:
		hint := crmclient.ConfigHint(err)
		if hint == "" {
			hint = "check the LEADRELAY_CRM_* settings"
		}
		h.configProblem(hint, log, err)
		return &DelayError{Delay: h.o.BreakerCooldown, Reason: "CRM configuration problem: " + hint, Err: err}
	case OutcomeBackpressure:
		if de := (*DelayError)(nil); errors.As(err, &de) {
			return err // a Limiter's own answer
		}
		d, _ := crmclient.RetryAfter(err)
		return &DelayError{Delay: d, Reason: "CRM asks to slow down", Err: err}
	}
	if lastAttempt(ctx) {
		h.keepDead(ctx, p, "retries exhausted: "+err.Error(), log)
		return err
	}
	log.Debug("delivery failed; will retry", zap.Error(err))
	return err
}

// configProblem remembers a configuration problem and logs it at most once
// per configLogEvery per process.
func (h *Handler) configProblem(hint string, log *zap.Logger, err error) {
	now := h.o.Clock()
	h.configMu.Lock()
	h.configHint = hint
	h.o.Observer.CRMConfigProblem(true)
	due := now.Sub(h.configLogged) >= configLogEvery
	if due {
		h.configLogged = now
	}
	h.configMu.Unlock()
	if due {
		log.Error("CRM configuration problem: deliveries paused, no attempts spent, nothing dead-lettered",
			zap.String("fix", hint), zap.Error(err))
	}
}

func (h *Handler) clearConfigProblem() {
	h.configMu.Lock()
	h.configHint = ""
	h.o.Observer.CRMConfigProblem(false)
	h.configMu.Unlock()
}

// ConfigProblem returns what an operator must fix when the last CRM answer
// showed a configuration problem, or "" (for readiness checks).
func (h *Handler) ConfigProblem() string {
	h.configMu.Lock()
	defer h.configMu.Unlock()
	return h.configHint
}

// crmFields returns the log fields describing a CRM error: crm_code.
func crmFields(err error) []zap.Field {
	var (
		ae *crmclient.APIError
		se *crmclient.StatusError
	)
	switch {
	case errors.As(err, &ae):
		return []zap.Field{zap.Int("crm_code", ae.Code)}
	case errors.As(err, &se):
		return []zap.Field{zap.Int("crm_code", se.StatusCode)}
	}
	return nil
}

// Ready is a readiness check: an error naming the fix while the last CRM
// answer showed a configuration problem (deliveries are paused), else nil.
func (h *Handler) Ready(context.Context) error {
	if hint := h.ConfigProblem(); hint != "" {
		return errors.New("CRM configuration problem, deliveries paused: " + hint)
	}
	return nil
}
