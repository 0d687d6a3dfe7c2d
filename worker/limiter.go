package worker

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
)

// The CRM limiter's keys, shared by every worker process, are
// rdb.CRMRateKey (GCRA state: the theoretical arrival time of the next
// request), rdb.CRMInflightKey (the concurrency semaphore: holder token →
// lease expiry, so a killed worker's slot frees itself) and rdb.CRMPauseKey
// (the time until which the CRM asked, with Retry-After, not to be
// called). Times inside are microseconds on the limiter's clock (Redis
// TIME unless injected).
var (
	crmRateKey     = rdb.CRMRateKey
	crmInflightKey = rdb.CRMInflightKey
	crmPauseKey    = rdb.CRMPauseKey
)

// Limiter tuning.
const (
	// DefaultLimiterWait is how long Acquire waits in process for a token or
	// a slot before it refuses. A short wait beats bouncing the task through
	// asynq's retry set, which costs round trips and at least a poll interval.
	DefaultLimiterWait = time.Second
	// DefaultLimiterLease is the lease of a concurrency slot when
	// NewRedisLimiter gets none: the default CRM timeout plus 5s.
	DefaultLimiterLease = 35 * time.Second
	// slotDelayMin and slotDelaySpread make the delay suggested when every
	// slot is taken: 250ms to 1s, jittered so refused workers spread out.
	slotDelayMin    = 250 * time.Millisecond
	slotDelaySpread = 750 * time.Millisecond
	// slotPollMin and slotPollSpread pace the in-process wait for a slot.
	slotPollMin    = 100 * time.Millisecond
	slotPollSpread = 100 * time.Millisecond
)

// acquireScript admits one CRM request, atomically: no Retry-After pause in
// force, a free slot (after dropping expired leases), and a rate token.
// A refusal consumes nothing. Answers {code, wait µs}: 0 admitted,
// 1 rate limited, 2 every slot taken, 3 paused.
// KEYS: rate, inflight, pause. ARGV: now µs (-1: Redis TIME), emission
// interval µs (0: no rate limit), burst, slots (0: no cap), lease µs, token.
var acquireScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if now < paused then return {3, paused - now} end
local slots = tonumber(ARGV[4])
if slots > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
  if redis.call('ZCARD', KEYS[2]) >= slots then return {2, 0} end
end
local iv = tonumber(ARGV[2])
local tat = 0
if iv > 0 then
  tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now) + iv
  local allowAt = tat - tonumber(ARGV[3]) * iv
  if now < allowAt then return {1, allowAt - now} end
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000) + 1))
end
if slots > 0 then
  local lease = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + lease), ARGV[6])
  redis.call('PEXPIRE', KEYS[2], string.format('%.0f', math.ceil(lease / 1000) + 1000))
end
return {0, 0}
`)

// pauseScript holds every worker back until now+d, unless a longer pause
// is in force. KEYS: pause. ARGV: now µs (-1: Redis TIME), d µs.
var pauseScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local d = tonumber(ARGV[2])
local upto = now + d
if upto > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', upto), 'PX', string.format('%.0f', math.ceil(d / 1000) + 1))
end
return 1
`)

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

// redisLimiter is the Redis-based Limiter: a GCRA rate limit on crmRateKey
// and a leased semaphore on crmInflightKey, checked and taken in one script.
type redisLimiter struct {
	rdb      redis.UniversalClient
	interval int64 // µs between requests at the steady rate; 0: no rate limit
	burst    int64
	slots    int
	lease    time.Duration
	maxWait  time.Duration
	clock    func() time.Time // nil: Redis TIME
}

// NewRedisLimiter returns a Limiter shared by every worker process on rdb:
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
// OptionsFrom cannot build it (it has no Redis client): the application
// sets Options.Limiter, e.g.
//
//	o := worker.OptionsFrom(cfg)
//	o.Limiter = worker.NewRedisLimiter(rdb, cfg.CRMRateLimit, cfg.CRMMaxConcurrent, cfg.CRMTimeout+5*time.Second)
func NewRedisLimiter(rdb redis.UniversalClient, ratePerSec float64, maxConcurrent int, lease time.Duration, opts ...LimiterOption) Limiter {
	l := &redisLimiter{rdb: rdb, slots: max(maxConcurrent, 0), lease: lease, maxWait: DefaultLimiterWait}
	if ratePerSec > 0 && !math.IsInf(ratePerSec, 1) {
		l.interval = max(int64(math.Round(1e6/ratePerSec)), 1)
		l.burst = max(int64(math.Ceil(ratePerSec)), 1)
	}
	if l.interval == 0 && l.slots == 0 {
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

var _ Limiter = (*redisLimiter)(nil)

// Acquire admits one CRM request. It waits in process while the next token
// or a free slot is due within the wait budget, then refuses with a
// *DelayError suggesting when to come back. When ctx ends during the wait,
// it refuses the same way: the task is postponed, not failed.
func (l *redisLimiter) Acquire(ctx context.Context) (func(), error) {
	token := newToken()
	var waited time.Duration
	for {
		code, wait, err := l.try(ctx, token)
		if err != nil {
			return nil, storeErr("CRM limiter", err)
		}
		var reason string
		poll := wait
		switch code {
		case 0:
			return l.releaser(ctx, token), nil
		case 1:
			reason = "CRM rate limit"
		case 2:
			reason = "CRM concurrency cap"
			wait = slotDelayMin + rand.N(slotDelaySpread)
			poll = slotPollMin + rand.N(slotPollSpread)
		default:
			reason = "CRM asked to wait (Retry-After)"
		}
		refusal := &DelayError{Delay: max(wait, time.Millisecond), Reason: reason}
		if waited+poll > l.maxWait {
			return nil, refusal
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, refusal
		case <-t.C:
		}
		waited += poll
	}
}

// try runs acquireScript once: code as the script answers and the wait it
// suggests.
func (l *redisLimiter) try(ctx context.Context, token string) (int64, time.Duration, error) {
	r, err := acquireScript.Run(ctx, l.rdb, []string{crmRateKey, crmInflightKey, crmPauseKey},
		l.now(), l.interval, l.burst, l.slots, l.lease.Microseconds(), token).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(r) != 2 {
		return 0, 0, fmt.Errorf("CRM limiter: unexpected script answer %v", r)
	}
	return r[0], time.Duration(r[1]) * time.Microsecond, nil
}

// releaser returns the release of a slot taken with token. It runs even
// after ctx is done, at most once; when it fails, the lease frees the slot.
func (l *redisLimiter) releaser(ctx context.Context, token string) func() {
	if l.slots == 0 {
		return func() {}
	}
	base := context.WithoutCancel(ctx)
	return sync.OnceFunc(func() {
		rctx, cancel := context.WithTimeout(base, bookkeepingTimeout)
		defer cancel()
		_ = l.rdb.ZRem(rctx, crmInflightKey, token).Err()
	})
}

// Pause refuses every Acquire, fleet-wide, for d (unless a longer pause is
// in force): the CRM said Retry-After.
func (l *redisLimiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	return pauseScript.Run(ctx, l.rdb, []string{crmPauseKey}, l.now(), d.Microseconds()).Err()
}

// now is the limiter's time in µs for the scripts; -1 asks for Redis TIME.
func (l *redisLimiter) now() int64 {
	if l.clock == nil {
		return -1
	}
	return l.clock().UnixMicro()
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
