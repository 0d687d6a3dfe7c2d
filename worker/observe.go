package worker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// Delivery outcomes reported to Observer.Delivery: one per processed task.
const (
	// DeliveryDelivered: this attempt added the lead to the CRM.
	DeliveryDelivered = "delivered"
	// DeliveryReconciled: a look-up after an ambiguous attempt found the
	// lead in the CRM; it is recorded as delivered without a second add.
	DeliveryReconciled = "reconciled"
	// DeliveryDuplicateSkipped: the lead was delivered already.
	DeliveryDuplicateSkipped = "duplicate_skipped"
	// DeliveryRetried: a failure that spends an attempt; asynq retries.
	DeliveryRetried = "retried"
	// DeliveryDead: the lead is dead-lettered.
	DeliveryDead = "dead"
	// DeliveryPaused: the fleet's deliveries are paused, and the lead
	// was postponed without spending an attempt: a CRM configuration
	// problem, an outage (the open circuit) or the CRM's Retry-After.
	DeliveryPaused = "paused"
	// DeliveryBackpressure: LeadRelay's own limits (rate, concurrency), a
	// busy lock, a look-up's wait or its Redis postponed the lead without
	// spending an attempt.
	DeliveryBackpressure = "backpressure"
)

// CRM actions reported to Observer.CRMRequest.
const (
	actionAdd  = "add"
	actionList = "list"
)

// Observer is told what the worker does, for metrics. Every method must be
// cheap and safe for concurrent use; Options.Observer nil observes nothing.
// The metrics package implements it.
type Observer interface {
	// CRMRequest reports one CRM call: its action ("add", "list"), the
	// class of its error ("ok" or a crmclient.Class name) and its duration.
	CRMRequest(action, class string, d time.Duration)
	// Delivery reports how the processing of one task of site ended, one
	// of the Delivery* constants. The site is a parameter, not an optional
	// interface, so a wrapper of an Observer cannot drop it.
	Delivery(site, outcome string)
	// DeliveryLatency reports, for a lead now recorded in the CRM, the time
	// since intake received it.
	DeliveryLatency(d time.Duration)
	// CRMCircuitOpen reports the shared circuit breaker's state as this
	// process last saw it.
	CRMCircuitOpen(open bool)
	// CRMConfigProblem reports whether deliveries are paused by a CRM
	// configuration problem.
	CRMConfigProblem(problem bool)
}

// nopObserver is the Observer of Options.Observer nil.
type nopObserver struct{}

func (nopObserver) CRMRequest(string, string, time.Duration) {}
func (nopObserver) Delivery(string, string)                  {}
func (nopObserver) DeliveryLatency(time.Duration)            {}
func (nopObserver) CRMCircuitOpen(bool)                      {}
func (nopObserver) CRMConfigProblem(bool)                    {}

// judgedCRM diagnoses every failed CRM call once, where it returns
// (crmError), and times every call for the Observer: the only place that
// reports CRM requests.
type judgedCRM struct {
	crm.Client
	obs Observer
	tr  trace.Tracer // nil traces nothing
}

func (c judgedCRM) Add(ctx context.Context, l crmclient.Lead) (int64, error) {
	return judged(ctx, c, actionAdd, func(ctx context.Context) (int64, error) { return c.Client.Add(ctx, l) })
}

func (c judgedCRM) List(ctx context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error) {
	return judged(ctx, c, actionList, func(ctx context.Context) ([]crmclient.ListItem, error) { return c.Client.List(ctx, o) })
}

// judged makes the CRM call of action: traced, its error diagnosed, and
// its time and class reported to the Observer.
func judged[T any](ctx context.Context, c judgedCRM, action string, call func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	ctx, end := traceCRM(ctx, c.tr, action)
	v, err := call(ctx)
	err = diagnosed(err)
	class := crmClass(err)
	end(class, err)
	c.obs.CRMRequest(action, class, time.Since(start))
	return v, err
}

func (c judgedCRM) Stat(ctx context.Context) ([]crmclient.UserStat, error) {
	st, err := c.Client.Stat(ctx)
	return st, diagnosed(err)
}

func (c judgedCRM) Info(ctx context.Context, id int64) (crmclient.LeadInfo, error) {
	li, err := c.Client.Info(ctx, id)
	return li, diagnosed(err)
}

// crmClass is the class label of a CRM call's error.
func crmClass(err error) string {
	if err == nil {
		return "ok"
	}
	return judge(err).class.String()
}

// pausesFleet are the postponements that pause every delivery of the
// fleet, not one lead's: during an outage a metric of paused deliveries
// must not read 0 (issue 21).
var pausesFleet = map[delivery.Code]bool{delivery.CircuitOpen: true, delivery.CRMPause: true}

// observeFailure reports how a failed task of site ends, as
// Worker.handleError (asynq's error handler) sees it.
func observeFailure(obs Observer, site string, f failure) {
	switch f.out {
	case delivery.Final:
		obs.Delivery(site, DeliveryDead)
	case delivery.Paused:
		obs.Delivery(site, DeliveryPaused)
	case delivery.Backpressure:
		if pausesFleet[f.reason.Code] {
			obs.Delivery(site, DeliveryPaused)
			break
		}
		obs.Delivery(site, DeliveryBackpressure)
	default:
		obs.Delivery(site, DeliveryRetried)
	}
}

// observeDelivered reports a lead recorded as delivered and its latency
// since intake received it.
func (h *Handler) observeDelivered(p lead.Payload, m rdb.Marker) {
	outcome := DeliveryDelivered
	if m.Via == "reconcile" {
		outcome = DeliveryReconciled
	}
	h.o.Observer.Delivery(p.Site, outcome)
	if !p.ReceivedAt.IsZero() {
		h.o.Observer.DeliveryLatency(h.o.Clock().Sub(p.ReceivedAt))
	}
}
