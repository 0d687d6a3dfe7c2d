package worker

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
)

// Limiter tuning.
const (
	// DefaultLimiterWait is how long Acquire waits in process for a token or
	// a slot before it refuses. Waiting beats bouncing the task through
	// asynq's retry set, which costs round trips and at least a poll
	// interval; a wait this long means the CRM is far behind.
	DefaultLimiterWait = 5 * time.Second
	// DefaultLimiterLease is the lease of a concurrency slot when
	// NewRedisLimiter gets none: the default CRM timeout plus 5s.
	DefaultLimiterLease = 35 * time.Second
	// slotDelayMin and slotDelaySpread make the delay suggested when every
	// slot is taken: 250ms to 1s, jittered so refused workers spread out.
	slotDelayMin    = 250 * time.Millisecond
	slotDelaySpread = 750 * time.Millisecond
	// slotPollMin and slotPollSpread pace the in-process wait for a slot
	// freed by another process (a release in this one wakes a waiter at
	// once). With adaptive concurrency the pace follows the CRM's latency,
	// between slotPollFloor and slotPollMin.
	slotPollMin    = 100 * time.Millisecond
	slotPollSpread = 100 * time.Millisecond
	slotPollFloor  = 5 * time.Millisecond
	// adaptiveStart is the adaptive limit of a fleet that has no state yet.
	adaptiveStart = 2
	// adaptiveTTL forgets the adaptive state of a fleet idle this long.
	adaptiveTTL = time.Hour
	// adaptiveProbeAfter is how long the limit stays below a level that
	// collapsed the CRM before it may try that level again: one collapse
	// (about 5 s of stalled requests on SalesMan) per 5 minutes costs
	// under 2% of the throughput.
	adaptiveProbeAfter = 5 * time.Minute
	// adaptiveKneeAfter is how long the limit stays below a level that
	// brought no more goodput: a few seconds of measuring a level above
	// the knee a minute costs little, and follows a CRM that got faster.
	adaptiveKneeAfter = time.Minute
)

// LimiterOption tunes NewRedisLimiter.
type LimiterOption func(*redisLimiter)

// WithLimiterClock makes the limiter keep time with now instead of Redis
// TIME. Tests use it; in production Redis TIME keeps the whole fleet on one
// clock whatever the hosts' clocks say.
func WithLimiterClock(now func() time.Time) LimiterOption {
	return func(l *redisLimiter) { l.clock = now }
}

// WithLimiterWait sets how long Acquire waits in process for a token or a
// slot before it refuses (default DefaultLimiterWait; 0 refuses at once).
func WithLimiterWait(d time.Duration) LimiterOption {
	return func(l *redisLimiter) { l.maxWait = max(d, 0) }
}

// WithAdaptiveConcurrency makes the concurrency cap a ceiling: the fleet
// runs at a limit it learns from the CRM's goodput (completions per second
// across the fleet) and errors, so it stays near the CRM's knee rather
// than driving a small CRM into collapse (the hill climb is drawn in
// internal/rdb/scripts/crm_release.lua). A fleet starts at 2 requests
// in flight and climbs one slot per measured epoch (a second or more)
// while goodput grows (after a cut, it doubles back up to the level that
// was best before it); it goes back to the best level when goodput falls
// for two epochs or stops growing (under 3% more, in either of two epochs,
// at twice the best level: a gentle slope is climbed on), and stays below
// a level that collapsed the CRM for 5 minutes. Without a cap
// (maxConcurrent 0) it does nothing.
func WithAdaptiveConcurrency(on bool) LimiterOption {
	return func(l *redisLimiter) { l.adaptive = on }
}

// WithLimitReport makes the limiter call report whenever a release of this
// process moved or measured the fleet's adaptive limit (about once a second
// under load, never otherwise), so operators see the limit and why it
// moved: the application logs it and sets a metric. report must be cheap;
// it runs on the delivery path.
func WithLimitReport(report func(AdaptiveChange)) LimiterOption {
	return func(l *redisLimiter) { l.report = report }
}

// AdaptiveVerdict says why the adaptive limit moved (or held); its values
// are rdb's (AdaptiveCut, AdaptiveCollapse, AdaptiveMeasured,
// AdaptiveKnee), which its scripts decide.
type AdaptiveVerdict = rdb.AdaptiveVerdict

// The adaptive limit's verdicts (see rdb.AdaptiveVerdict).
const (
	AdaptiveCut      = rdb.AdaptiveCut
	AdaptiveCollapse = rdb.AdaptiveCollapse
	AdaptiveMeasured = rdb.AdaptiveMeasured
	AdaptiveKnee     = rdb.AdaptiveKnee
)

// AdaptiveChange is one move of the fleet's adaptive limit, for
// WithLimitReport.
type AdaptiveChange = rdb.AdaptiveMove

// redisLimiter is the Redis-based Limiter: a GCRA rate limit and a leased
// semaphore, checked and taken in one script of the store (rdb.CRMAcquire).
type redisLimiter struct {
	store    *rdb.Store
	rate     rdb.Rate // zero: no rate limit
	slots    int
	lease    time.Duration
	maxWait  time.Duration
	clock    func() time.Time // nil: Redis TIME
	adaptive bool
	report   func(AdaptiveChange) // nil: none
	wake     chan struct{}        // a release here wakes a waiter here
	waiting  atomic.Int64         // this process's Acquires waiting for a slot
}

// NewRedisLimiter returns a Limiter shared by every worker process on rc:
// at most ratePerSec CRM requests a second across the fleet (bursts of
// max(1, ceil(ratePerSec))), and at most maxConcurrent in flight. Zero (or
// less) disables each part; with both disabled it returns nil, which
// Options.Limiter takes as no limit. A slot is leased for lease (default
// DefaultLimiterLease; give it CRMTimeout plus a margin), so the slot of a
// killed worker frees itself after that long.
//
// A refusal is a *DelayError (backpressure: no attempt spent) after Acquire
// waited up to DefaultLimiterWait for a token or a slot. A Redis failure is
// an ordinary, retried error. The Handler also pauses the limiter when the
// CRM answers with Retry-After, so the whole fleet holds off.
//
// The application sets Options.Limiter from the CRM settings, e.g.
//
//	o.Limiter = worker.NewRedisLimiter(rdb, cfg.CRM.RateLimit, cfg.CRM.MaxConcurrent, cfg.CRM.Timeout+5*time.Second)
func NewRedisLimiter(rc redis.UniversalClient, ratePerSec float64, maxConcurrent int, lease time.Duration, opts ...LimiterOption) Limiter {
	l := &redisLimiter{store: rdb.New(rc), rate: rdb.PerSecond(ratePerSec), slots: max(maxConcurrent, 0), lease: lease,
		maxWait: DefaultLimiterWait, wake: make(chan struct{}, 64)}
	if l.rate.Interval == 0 && l.slots == 0 {
		return nil
	}
	if l.lease <= 0 {
		l.lease = DefaultLimiterLease
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

var _ FeedbackLimiter = (*redisLimiter)(nil)

// Acquire admits one CRM request. It waits in process while the next token
// or a free slot is due within the wait budget, then refuses with a
// *DelayError suggesting when to come back. When ctx ends during the wait,
// it refuses the same way: the task is postponed, not failed. Its release
// counts the request as answered (see AcquireFeedback).
func (l *redisLimiter) Acquire(ctx context.Context) (func(), error) {
	done, err := l.AcquireFeedback(ctx)
	if err != nil {
		return nil, err
	}
	return func() { done(CRMAnswered) }, nil
}

// AcquireFeedback is Acquire whose release reports how the request went;
// the adaptive limit learns from it and from the time since admission.
func (l *redisLimiter) AcquireFeedback(ctx context.Context) (func(CRMOutcome), error) {
	token := newToken()
	var waited time.Duration
	for {
		a, err := l.try(ctx, token)
		if err != nil {
			if ctx.Err() != nil && waited > 0 {
				// The wait ran out during a look at Redis: postponed, as
				// when it runs out between looks.
				return nil, &DelayError{Delay: slotDelayMin + rand.N(slotDelaySpread), Reason: delivery.Reason{Code: delivery.ConcurrencyCap}}
			}
			return nil, crm.StoreErr("CRM limiter", err)
		}
		var reason delivery.Code
		wait, poll, shared := a.Wait, a.Wait, false
		switch a.Verdict {
		case rdb.CRMAdmitted:
			return l.releaser(ctx, token, a.At), nil
		case rdb.CRMRateLimited:
			reason = delivery.RateLimit
		case rdb.CRMSlotsTaken:
			reason, shared = delivery.ConcurrencyCap, true
			wait = slotDelayMin + rand.N(slotDelaySpread)
			poll = slotPollMin + rand.N(slotPollSpread)
			if l.adaptive && a.Latency > 0 {
				// A slot frees about every latency/limit: look again at
				// about half the latency.
				half := min(max(a.Latency/2, slotPollFloor), slotPollMin)
				poll = half + rand.N(half)
			}
		default:
			reason = delivery.CRMPause
		}
		refusal := &DelayError{Delay: max(wait, time.Millisecond), Reason: delivery.Reason{Code: reason}}
		if waited+poll > l.maxWait {
			return nil, refusal
		}
		start := time.Now()
		if !l.sleep(ctx, poll, l.maxWait-waited, shared) {
			return nil, refusal
		}
		waited += time.Since(start)
	}
}

// sleep waits poll, or until a release of this process wakes it, at most
// budget; false when ctx ended. The waiters for a slot (shared) share
// the poll: each sleeps poll times how many wait, so a process looks at
// Redis about once a poll however many of its runs wait. A slot another
// process frees is found within about a poll, as a lone waiter finds it
// (twelve waiters looking on their own found it sooner, at twelve times
// the cost), and one this process frees wakes a waiter at once; without
// sharing, 12 runs waiting on the real CRM's 8 slots made 6 refused looks
// a delivered lead, and took the CPU that CRM's host needed.
func (l *redisLimiter) sleep(ctx context.Context, poll, budget time.Duration, shared bool) bool {
	if shared {
		n := l.waiting.Add(1)
		defer l.waiting.Add(-1)
		poll = min(poll*time.Duration(n), max(budget, poll))
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-l.wake:
	case <-t.C:
	}
	return true
}

// try asks the store once.
func (l *redisLimiter) try(ctx context.Context, token string) (rdb.CRMAdmission, error) {
	return l.store.CRMAcquire(ctx, rdb.CRMAcquireArgs{Now: l.now(), Rate: l.rate, Slots: l.slots, Lease: l.lease,
		Token: token, Adaptive: l.adaptive, StartLimit: adaptiveStart})
}

// releaser returns the release of a slot taken with token at admitted.
// It runs even after ctx is done, at most once; when it fails, the lease
// frees the slot. It wakes a waiter of this process.
func (l *redisLimiter) releaser(ctx context.Context, token string, admitted time.Time) func(CRMOutcome) {
	if l.slots == 0 {
		return func(CRMOutcome) {}
	}
	base := context.WithoutCancel(ctx)
	var once sync.Once
	return func(out CRMOutcome) {
		once.Do(func() {
			rctx, cancel := context.WithTimeout(base, bookkeepingTimeout)
			defer cancel()
			mv, err := l.store.CRMRelease(rctx, rdb.CRMReleaseArgs{Token: token, AdmittedAt: admitted, Signal: out.signal(),
				Now: l.now(), Cap: l.slots, Adaptive: l.adaptive, StartLimit: adaptiveStart, StateTTL: adaptiveTTL,
				ProbeAfter: adaptiveProbeAfter, KneeAfter: adaptiveKneeAfter})
			if err == nil && mv.Verdict != rdb.AdaptiveNone && l.report != nil {
				l.report(mv)
			}
			select {
			case l.wake <- struct{}{}:
			default:
			}
		})
	}
}

// Limit is the fleet's adaptive concurrency limit now (0 when it adapts
// not, or has no state yet), for metrics and tests.
func (l *redisLimiter) Limit(ctx context.Context) (float64, error) {
	if !l.adaptive || l.slots == 0 {
		return 0, nil
	}
	return l.store.CRMLimit(ctx)
}

// Pause refuses every Acquire, fleet-wide, for d (unless a longer pause is
// in force): the CRM said Retry-After.
func (l *redisLimiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	return l.store.CRMPause(ctx, l.now(), d)
}

// now is the limiter's time for the store; zero asks for Redis TIME.
func (l *redisLimiter) now() time.Time {
	if l.clock == nil {
		return time.Time{}
	}
	return l.clock()
}

// crmPauser is a Limiter that can hold the whole fleet back when the CRM
// answers with Retry-After.
type crmPauser interface {
	Pause(ctx context.Context, d time.Duration) error
}

// honourRetryAfter pauses the Limiter, fleet-wide, for the CRM's
// Retry-After (capped at RetryMaxDelay, as RetryDelay caps it), so other
// leads do not keep calling a CRM that asked for quiet.
func (h *Handler) honourRetryAfter(ctx context.Context, err error, log *zap.Logger) {
	d, ok := crmclient.RetryAfter(err)
	p, can := h.o.Limiter.(crmPauser)
	if !ok || !can {
		return
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	if perr := p.Pause(bctx, min(d, h.o.RetryMaxDelay)); perr != nil {
		log.Warn("CRM limiter pause failed", zap.Error(perr))
	}
}

// signal is the outcome as the store's adaptive limit takes it.
func (o CRMOutcome) signal() rdb.CRMSignal {
	switch o {
	case CRMOverloaded:
		return rdb.CRMOverloaded
	case CRMAbandoned:
		return rdb.CRMNoSignal
	case CRMFailed:
		return rdb.CRMFailed
	}
	return rdb.CRMAnswered
}
