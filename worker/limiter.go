package worker

import (
	"context"
	"errors"
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
// called), and rdb.CRMAdaptiveKey (the adaptive concurrency limit's state,
// a hash; see slotReleaseScript). Times inside are
// microseconds on the limiter's clock (Redis TIME unless injected).
var (
	crmRateKey     = rdb.CRMRateKey
	crmInflightKey = rdb.CRMInflightKey
	crmPauseKey    = rdb.CRMPauseKey
	crmLimitKey    = rdb.CRMAdaptiveKey
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

// acquireScript admits one CRM request, atomically: no Retry-After pause in
// force, a free slot (after dropping expired leases), and a rate token.
// With adaptive concurrency the slots are the adaptive limit (rounded down,
// at least 1), never more than the cap. A refusal consumes nothing.
// Answers {code, wait µs, now µs, latency µs}: code 0 admitted, 1 rate
// limited, 2 every slot taken, 3 paused; now is the admission time the
// release measures latency from; latency the adaptive state's smoothed
// latency (0 when unknown), which paces the wait for a slot.
// KEYS: rate, inflight, pause, limit. ARGV: now µs (-1: Redis TIME),
// emission interval µs (0: no rate limit), burst, slots (0: no cap), lease
// µs, token, adaptive (1 or 0), starting limit.
var acquireScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if now < paused then return {3, paused - now, now, 0} end
local slots = tonumber(ARGV[4])
local lat = 0
if slots > 0 and ARGV[7] == '1' then
  local st = redis.call('HMGET', KEYS[4], 'limit', 'avg')
  local lim = tonumber(st[1] or ARGV[8])
  lat = math.floor(tonumber(st[2] or '0'))
  slots = math.min(slots, math.max(1, math.floor(lim)))
end
if slots > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
  if redis.call('ZCARD', KEYS[2]) >= slots then return {2, 0, now, lat} end
end
local iv = tonumber(ARGV[2])
local tat = 0
if iv > 0 then
  tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now) + iv
  local allowAt = tat - tonumber(ARGV[3]) * iv
  if now < allowAt then return {1, allowAt - now, now, lat} end
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000) + 1))
end
if slots > 0 then
  local lease = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + lease), ARGV[6])
  redis.call('PEXPIRE', KEYS[2], string.format('%.0f', math.ceil(lease / 1000) + 1000))
end
return {0, 0, now, lat}
`)

// slotReleaseScript frees a slot and, with adaptive concurrency, feeds the
// request to the fleet's limit: a hill climb on goodput, the CRM requests
// the whole fleet completes per second (see WithAdaptiveConcurrency).
//
// The limit is a whole number of slots. Each level is measured for an
// epoch: it starts at the first completion of a request admitted at that
// level (so the ramp from the level before is not counted), and ends after
// at least 20 completions and max(1 s, 4× the smoothed latency), or after
// 3 s whatever the count. An epoch whose releases mostly found free slots
// measured the demand, not the CRM: it gives no verdict. Otherwise its
// goodput is compared with peak, the best goodput and the level it was
// measured at (peak_lvl):
//
//   - at peak_lvl (or with no peak yet): the peak is re-measured (smoothed
//     1/2) and the limit tries one more;
//   - at least 5% above the peak: a new peak; one more;
//   - below peak_lvl (after a cut): one more, up to the peak again;
//   - under 0.8× the peak: past the knee: back to peak_lvl, and the level
//     is a knee for the knee time (not bad: on a shared host the CRM's
//     goodput halves when a neighbour takes the CPU, so a fall alone is
//     not proof of a cliff);
//   - in between: one more, unless the limit reached twice peak_lvl (and
//     at least 3 more) with no gain (a plateau): then back to peak_lvl
//     with a knee just above it, so a CRM whose goodput is flat keeps its
//     latency low, while a gentle slope (the real CRM with 32 PHP workers
//     gives about 10% more at 16 than at 4) is still climbed.
//
// Latency rising with the limit is no signal by itself: a CPU-bound CRM
// serves more, more slowly, as it gets more processes. Two shortcuts do
// not wait for the epoch: a request admitted above peak_lvl that took over
// 8× the latency the peak's goodput implies (limit/peak, Little's law) is
// a collapse, as a PHP CRM gives past its pool (its webhook call stalls
// 5 s): back to peak_lvl, and the level is bad for the probe-after time;
// an overloaded outcome (a timeout, 5xx or 429) cuts the limit
// to 0.8× (at least one less, at least 1) at most once per round trip
// (a request admitted before the last cut does not cut again), forgets the
// peak, and marks the level bad unless a mark is in force (so an outage
// does not pin the fleet at 1) or it is the starting limit (which a CRM
// still busy with someone else's burst gives). The limit never exceeds the
// cap, nor reaches a bad or knee level.
//
// State (rdb.CRMAdaptiveKey): limit; avg (smoothed latency, weight 1/4,
// which paces the waiters); drop (last cut); bad, bad_at; knee, knee_at;
// epoch (when the level began), t0, n, full (the epoch's start, its
// completions, those that found the slots in use); peak, peak_lvl;
// goodput (the last epoch's).
// KEYS: inflight, limit. ARGV: token, admitted at µs, outcome (0 answered,
// 1 overloaded, 2 no signal), now µs (-1: Redis TIME), cap, adaptive (1 or
// 0), starting limit, state TTL ms, probe-after µs, knee-after µs.
// Answers {limit (-1 without adaptation), verdict (0 none, 1 cut, 2
// collapse, 3 epoch measured, 4 knee), the epoch's goodput ×1000}.
var slotReleaseScript = redis.NewScript(`
local now = tonumber(ARGV[4])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local inflight = redis.call('ZCARD', KEYS[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[6] ~= '1' or ARGV[3] == '2' then return {-1, 0, 0} end
local start = tonumber(ARGV[2])
local rtt = math.max(now - start, 1)
local cap = tonumber(ARGV[5])
local first = tonumber(ARGV[7])
local st = redis.call('HMGET', KEYS[2], 'limit', 'avg', 'drop', 'bad', 'bad_at', 'knee', 'knee_at',
  'epoch', 't0', 'n', 'full', 'peak', 'peak_lvl')
local limit = math.max(1, math.min(cap, math.floor(tonumber(st[1] or first))))
local avg = tonumber(st[2] or rtt)
local drop = tonumber(st[3] or '0')
local bad, badAt = tonumber(st[4] or '0'), tonumber(st[5] or '0')
local knee, kneeAt = tonumber(st[6] or '0'), tonumber(st[7] or '0')
local epoch, t0 = tonumber(st[8] or '0'), tonumber(st[9] or '0')
local n, full = tonumber(st[10] or '0'), tonumber(st[11] or '0')
local peak, peakLvl = tonumber(st[12] or '0'), tonumber(st[13] or '0')
avg = avg + (rtt - avg) * 0.25
if bad > 0 and now - badAt > tonumber(ARGV[9]) then bad = 0 end
if knee > 0 and now - kneeAt > tonumber(ARGV[10]) then knee = 0 end
local nextLimit, verdict, rate = limit, 0, 0
if ARGV[3] == '1' then
  if start >= drop then
    if bad == 0 and limit > first then bad, badAt = limit, now end
    nextLimit = math.max(1, math.floor(limit * 0.8))
    drop, peak, peakLvl, verdict = now, 0, 0, 1
  end
elseif start >= epoch then
  if peak > 0 and limit > peakLvl and rtt > 8000000 * limit / peak then
    if bad == 0 or limit < bad then bad, badAt = limit, now end
    nextLimit, verdict = peakLvl, 2
  elseif t0 == 0 then
    t0, n, full = now, 0, 0
  else
    n = n + 1
    if inflight + 1 >= limit then full = full + 1 end
    local elapsed = now - t0
    if elapsed >= 3000000 or (n >= 20 and elapsed >= math.max(1000000, 4 * avg)) then
      if full * 2 < n then
        t0, n, full = now, 0, 0
      else
        rate = n * 1000000 / elapsed
        verdict = 3
        if peak == 0 or limit == peakLvl then
          if peak == 0 then peak = rate else peak = peak + (rate - peak) * 0.5 end
          peakLvl, nextLimit = limit, limit + 1
        elseif rate >= peak * 1.05 then
          peak, peakLvl, nextLimit = rate, limit, limit + 1
        elseif limit < peakLvl then
          nextLimit = limit + 1
        elseif rate < peak * 0.8 then
          knee, kneeAt, nextLimit, verdict = limit, now, peakLvl, 4
        else
          if limit >= math.max(peakLvl + 3, 2 * peakLvl) then
            knee, kneeAt, nextLimit, verdict = peakLvl + 1, now, peakLvl, 4
          else
            nextLimit = limit + 1
          end
        end
      end
    end
  end
end
if verdict > 0 then
  local top = cap
  if bad > 0 then top = math.min(top, bad - 1) end
  if knee > 0 then top = math.min(top, knee - 1) end
  nextLimit = math.max(1, math.min(top, nextLimit))
  if nextLimit ~= limit or verdict ~= 3 then epoch = now end
  t0, n, full = 0, 0, 0
  if nextLimit == limit and verdict == 3 then t0 = now end
  limit = nextLimit
end
redis.call('HSET', KEYS[2], 'limit', limit, 'avg', string.format('%.0f', avg), 'drop', string.format('%.0f', drop),
  'bad', bad, 'bad_at', string.format('%.0f', badAt), 'knee', knee, 'knee_at', string.format('%.0f', kneeAt),
  'epoch', string.format('%.0f', epoch), 't0', string.format('%.0f', t0), 'n', n, 'full', full,
  'peak', string.format('%.3f', peak), 'peak_lvl', peakLvl)
if verdict == 3 then redis.call('HSET', KEYS[2], 'goodput', string.format('%.3f', rate)) end
redis.call('PEXPIRE', KEYS[2], ARGV[8])
return {limit, verdict, math.floor(rate * 1000)}
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

// WithAdaptiveConcurrency makes the concurrency cap a ceiling: the fleet
// runs at a limit it learns from the CRM's goodput (completions per second
// across the fleet) and errors, so it stays near the CRM's knee rather
// than driving a small CRM into collapse (see slotReleaseScript). A fleet
// starts at 2 requests in flight and climbs one slot per measured epoch
// (a second or more) while goodput grows; it goes back to the best level
// when goodput falls or stops growing, and stays below a level that
// collapsed the CRM for 5 minutes. Without a cap (maxConcurrent 0) it does
// nothing.
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

// AdaptiveVerdict says why the adaptive limit moved (or held).
type AdaptiveVerdict int

// The adaptive limit's verdicts (see slotReleaseScript).
const (
	// AdaptiveCut: the CRM was overloaded (a timeout, 5xx or 429): the
	// limit was cut to 0.8×.
	AdaptiveCut AdaptiveVerdict = 1
	// AdaptiveCollapse: a request admitted above the best level stalled
	// (8× the latency the best goodput implies): the level is avoided for
	// 5 minutes.
	AdaptiveCollapse AdaptiveVerdict = 2
	// AdaptiveMeasured: an epoch measured the level's goodput; the limit
	// climbs one or holds.
	AdaptiveMeasured AdaptiveVerdict = 3
	// AdaptiveKnee: more slots brought no more goodput: back to the best
	// level for a minute.
	AdaptiveKnee AdaptiveVerdict = 4
)

// String is the verdict's name in logs.
func (v AdaptiveVerdict) String() string {
	switch v {
	case AdaptiveCut:
		return "cut"
	case AdaptiveCollapse:
		return "collapse"
	case AdaptiveMeasured:
		return "measured"
	case AdaptiveKnee:
		return "knee"
	}
	return fmt.Sprintf("AdaptiveVerdict(%d)", int(v))
}

// AdaptiveChange is one move of the fleet's adaptive limit, for
// WithLimitReport.
type AdaptiveChange struct {
	// Limit is the fleet's limit after the move.
	Limit int
	// Verdict is why it moved.
	Verdict AdaptiveVerdict
	// Goodput is the measured epoch's CRM completions per second across the
	// fleet (AdaptiveMeasured and AdaptiveKnee; 0 otherwise).
	Goodput float64
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
	adaptive bool
	report   func(AdaptiveChange) // nil: none
	wake     chan struct{}        // a release here wakes a waiter here
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
	l := &redisLimiter{rdb: rdb, slots: max(maxConcurrent, 0), lease: lease, maxWait: DefaultLimiterWait, wake: make(chan struct{}, 64)}
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
				return nil, &DelayError{Delay: slotDelayMin + rand.N(slotDelaySpread), Reason: "CRM limiter wait ended"}
			}
			return nil, storeErr("CRM limiter", err)
		}
		var reason string
		wait, poll := a.wait, a.wait
		switch a.code {
		case 0:
			return l.releaser(ctx, token, a.now), nil
		case 1:
			reason = "CRM rate limit"
		case 2:
			reason = "CRM concurrency cap"
			wait = slotDelayMin + rand.N(slotDelaySpread)
			poll = slotPollMin + rand.N(slotPollSpread)
			if l.adaptive && a.latency > 0 {
				// A slot frees about every latency/limit: look again at
				// about half the latency.
				half := min(max(a.latency/2, slotPollFloor), slotPollMin)
				poll = half + rand.N(half)
			}
		default:
			reason = "CRM asked to wait (Retry-After)"
		}
		refusal := &DelayError{Delay: max(wait, time.Millisecond), Reason: reason}
		if waited+poll > l.maxWait {
			return nil, refusal
		}
		start := time.Now()
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, refusal
		case <-l.wake:
			t.Stop()
		case <-t.C:
		}
		waited += time.Since(start)
	}
}

// admission is acquireScript's answer.
type admission struct {
	code    int64
	wait    time.Duration
	now     int64         // µs
	latency time.Duration // the CRM's smoothed latency, 0 when unknown
}

// try runs acquireScript once.
func (l *redisLimiter) try(ctx context.Context, token string) (admission, error) {
	adaptive := "0"
	if l.adaptive {
		adaptive = "1"
	}
	r, err := acquireScript.Run(ctx, l.rdb, []string{crmRateKey, crmInflightKey, crmPauseKey, crmLimitKey},
		l.now(), l.interval, l.burst, l.slots, l.lease.Microseconds(), token, adaptive, adaptiveStart).Int64Slice()
	if err != nil {
		return admission{}, err
	}
	if len(r) != 4 {
		return admission{}, fmt.Errorf("CRM limiter: unexpected script answer %v", r)
	}
	return admission{code: r[0], wait: time.Duration(r[1]) * time.Microsecond, now: r[2],
		latency: time.Duration(r[3]) * time.Microsecond}, nil
}

// releaser returns the release of a slot taken with token at admitted (µs).
// It runs even after ctx is done, at most once; when it fails, the lease
// frees the slot. It wakes a waiter of this process.
func (l *redisLimiter) releaser(ctx context.Context, token string, admitted int64) func(CRMOutcome) {
	if l.slots == 0 {
		return func(CRMOutcome) {}
	}
	base := context.WithoutCancel(ctx)
	var once sync.Once
	return func(out CRMOutcome) {
		once.Do(func() {
			rctx, cancel := context.WithTimeout(base, bookkeepingTimeout)
			defer cancel()
			adaptive := "0"
			if l.adaptive {
				adaptive = "1"
			}
			r, err := slotReleaseScript.Run(rctx, l.rdb, []string{crmInflightKey, crmLimitKey},
				token, admitted, int(out), l.now(), l.slots, adaptive, adaptiveStart, adaptiveTTL.Milliseconds(),
				adaptiveProbeAfter.Microseconds(), adaptiveKneeAfter.Microseconds()).Int64Slice()
			if err == nil && len(r) == 3 && r[1] > 0 && l.report != nil {
				l.report(AdaptiveChange{Limit: int(r[0]), Verdict: AdaptiveVerdict(r[1]), Goodput: float64(r[2]) / 1000})
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
	v, err := l.rdb.HGet(ctx, crmLimitKey, "limit").Float64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
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
