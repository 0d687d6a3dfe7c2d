package worker

import (
	"time"

	"go.opentelemetry.io/otel/trace"

	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// Reconcile policies for a lead whose fate at the CRM cannot be found out.
const (
	// ReconcileResend sends the lead again: never lose a lead, at the risk
	// of a duplicate.
	ReconcileResend = "resend"
	// ReconcileDead dead-letters the lead for a human to decide.
	ReconcileDead = "dead"
)

// The worker's defaults. config.Load uses them for the worker's settings,
// so a setting left unset and a zero Options field mean the same.
const (
	DefaultConcurrency      = 10
	DefaultRetryInitial     = 10 * time.Second
	DefaultRetryMultiplier  = 2
	DefaultRetryMaxDelay    = time.Hour
	DefaultDeliveredTTL     = 30 * 24 * time.Hour
	DefaultShutdownTimeout  = 30 * time.Second
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 30 * time.Second
)

// Options tunes a Handler and a Worker. Zero fields take the defaults
// above (see withDefaults), so the zero Options is usable in tests.
type Options struct {
	// Queue is the asynq queue the worker serves (default lead.DefaultQueue).
	Queue string
	// Concurrency is the number of tasks processed at once per Worker (default DefaultConcurrency).
	Concurrency int
	// RetryInitial is the first retry delay (default DefaultRetryInitial).
	RetryInitial time.Duration
	// RetryMultiplier grows the delay per attempt (default DefaultRetryMultiplier).
	RetryMultiplier float64
	// RetryMaxDelay caps every retry delay, Retry-After included (default DefaultRetryMaxDelay).
	RetryMaxDelay time.Duration
	// MaxRetry is the number of counted retries before a lead is
	// dead-lettered (default lead.DefaultMaxRetry, about three days with
	// the defaults above). The producer enqueues each task with it (lead.TaskOptions);
	// the worker reads a task's own budget from asynq and uses this only
	// for a task that carries none.
	MaxRetry int
	// DeliveredTTL is how long the delivered marker is kept (default DefaultDeliveredTTL).
	DeliveredTTL time.Duration
	// ShutdownTimeout is how long Run waits for in-flight deliveries on
	// shutdown before handing them back to the queue (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// BreakerThreshold is the number of consecutive transient CRM failures,
	// across all workers, that opens the circuit (default DefaultBreakerThreshold).
	BreakerThreshold int
	// BreakerCooldown is how long the circuit stays open before a probe
	// (default DefaultBreakerCooldown).
	BreakerCooldown time.Duration
	// CRMTimeout bounds one CRM call (default crmclient.DefaultTimeout). A reconcile waits at
	// least this long after the last send, so that request cannot still be
	// in flight.
	CRMTimeout time.Duration
	// ReconcileUnknown is ReconcileResend (default) or ReconcileDead: what
	// to do when a reconcile cannot tell whether the CRM stored the lead.
	ReconcileUnknown string
	// ReconcileAfter is the least time between an add whose outcome is
	// unknown and the look-up that settles it (default and minimum:
	// CRMTimeout + 1s). Set it above the longest time the CRM's server may
	// keep working on a request after LeadRelay gave up on it.
	ReconcileAfter time.Duration
	// LockTTL is the expiry of the per-lead delivery lock; the holder renews
	// it every LockTTL/3 (default 15s).
	LockTTL time.Duration
	// PollInterval is how often an idle worker (one that ran no task for
	// a second) looks for work it was not woken for (default
	// DefaultPollInterval, 5s): a lead enqueued without a wake, a wake
	// lost with a connection. A lead the producer publishes wakes the
	// idle workers at once; a known retry wakes them when it is due.
	// Each look is one script of six Redis commands.
	PollInterval time.Duration
	// BusyPollInterval is how often a busy worker's asynq server looks for
	// a task when the queue is empty (default DefaultBusyPollInterval,
	// 50ms; asynq's own 1s would add up to a second to leads that come
	// while a worker is busy). About 60 Redis commands a second, but only
	// while busy.
	BusyPollInterval time.Duration
	// DelayedPollInterval is how often a busy worker moves due retries and
	// postponed leads back to the queue (default 1s, or PollInterval when
	// that is shorter; asynq's own is 5s, which would add up to 5s to
	// every postponement).
	DelayedPollInterval time.Duration
	// WaitReplicas, when positive, makes every add wait until that many
	// Redis replicas hold the lead's "sending" record, within WaitTimeout
	// (default 1s): a failover that lost the record would let the next run
	// add again instead of looking the lead up.
	WaitReplicas int
	// WaitTimeout bounds that wait.
	WaitTimeout time.Duration
	// Limiter, when set, admits every CRM request (rate limit, concurrency
	// cap). Nil means no limit.
	Limiter Limiter
	// DeadLetters, when set, keeps every dead lead beyond asynq's archive.
	// Nil means asynq's archive only.
	DeadLetters DeadLetters
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Codec opens lead payloads (and tells the fleet, by registering the
	// worker as a sealer, that it can). The zero Codec reads plaintext
	// payloads only.
	Codec lead.Codec
	// IDKey is the relay's id key (LEADRELAY_ID_KEY): a delivered lead's
	// envelope keeps its content hash as sent keyed with it
	// (lead.IDKey.SentSum), which the CRM audit compares: every worker
	// needs the same one. The zero IDKey keys nothing.
	IDKey lead.IDKey
	// Observer, when set, is told about CRM calls, delivery outcomes and
	// the circuit and configuration state, for metrics. Nil observes nothing.
	Observer Observer
	// Tracer, when set, traces every run as a child of the trace its task
	// carries (lead.Payload.Trace), and every CRM call within it: package
	// tracing. Nil traces nothing and costs nothing.
	Tracer trace.Tracer
	// OnOutage, when set, is told when the fleet's CRM circuit opens for an
	// outage (open, with the failure that opened it) and when it closes
	// again: once for the whole fleet, by the worker whose call opened or
	// closed it. It must not block. Nil tells nobody.
	OnOutage func(open bool, reason delivery.Reason)
	// OnRollback, when set, is told when this worker finds that Redis came
	// back with older data (rollback.go), with when: once for the fleet,
	// by the worker that found it. It must not block. Nil tells nobody.
	OnRollback func(since time.Time)
}

// outage tells OnOutage, if set.
func (o Options) outage(open bool, reason delivery.Reason) {
	if o.OnOutage != nil {
		o.OnOutage(open, reason)
	}
}

// withDefaults fills zero fields with the defaults.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Queue == "" {
		o.Queue = lead.DefaultQueue
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	def(&o.RetryInitial, DefaultRetryInitial)
	if o.RetryMultiplier < 1 {
		o.RetryMultiplier = DefaultRetryMultiplier
	}
	def(&o.RetryMaxDelay, DefaultRetryMaxDelay)
	if o.RetryMaxDelay < o.RetryInitial {
		o.RetryMaxDelay = o.RetryInitial
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = lead.DefaultMaxRetry
	}
	def(&o.DeliveredTTL, DefaultDeliveredTTL)
	def(&o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.BreakerThreshold <= 0 {
		o.BreakerThreshold = DefaultBreakerThreshold
	}
	def(&o.BreakerCooldown, DefaultBreakerCooldown)
	def(&o.CRMTimeout, crmclient.DefaultTimeout)
	if o.ReconcileUnknown != ReconcileDead {
		o.ReconcileUnknown = ReconcileResend
	}
	o.ReconcileAfter = max(o.ReconcileAfter, o.CRMTimeout+reconcileSettle)
	def(&o.LockTTL, 15*time.Second)
	def(&o.WaitTimeout, rdb.DefaultSyncTimeout)
	def(&o.PollInterval, DefaultPollInterval)
	def(&o.BusyPollInterval, DefaultBusyPollInterval)
	def(&o.DelayedPollInterval, min(time.Second, o.PollInterval))
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return o
}
