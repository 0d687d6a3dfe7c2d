package rdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The fleet-wide CRM limiter's state: CRMRateKey (GCRA: the theoretical
// arrival time of the next request), CRMInflightKey (the concurrency
// semaphore: holder token → lease expiry, so a killed worker's slot frees
// itself), CRMPauseKey (the time until which the CRM asked, with
// Retry-After, not to be called) and CRMAdaptiveKey (the adaptive
// concurrency limit's state; see scripts/crm_release.lua). Times inside
// are µs on the limiter's clock: Redis TIME unless a test injects one.
// What to make of the answers (how long to wait, when to come back) is the
// worker's.
var (
	crmAcquireScript = load("crm_acquire")
	crmReleaseScript = load("crm_release")
	crmPauseScript   = load("crm_pause")
)

// Rate is a rate limit as the scripts take it: one request every
// Interval, in bursts of up to Burst. The zero value limits nothing.
type Rate struct {
	Interval time.Duration
	Burst    int64
}

// PerSecond allows perSec requests a second in bursts of one second's
// worth (at least one). Zero, less or infinity limits nothing.
func PerSecond(perSec float64) Rate {
	if !(perSec > 0) || math.IsInf(perSec, 1) {
		return Rate{}
	}
	return Rate{Interval: max(time.Duration(math.Round(1e6/perSec))*time.Microsecond, time.Microsecond),
		Burst: max(int64(math.Ceil(perSec)), 1)}
}

// CRMAcquireArgs are the inputs of CRMAcquire.
type CRMAcquireArgs struct {
	// Now is the limiter's time; zero means Redis TIME.
	Now time.Time
	// Rate is the fleet's CRM rate limit (zero: none).
	Rate Rate
	// Slots caps the requests in flight across the fleet (0: no cap).
	Slots int
	// Lease is how long a slot stays taken if its holder never frees it.
	Lease time.Duration
	// Token names this request's slot, for CRMRelease.
	Token string
	// Adaptive makes Slots a ceiling of the fleet's adaptive limit, which
	// starts at StartLimit.
	Adaptive   bool
	StartLimit int
}

// CRMVerdict is what CRMAcquire decided.
type CRMVerdict int

// The answers of CRMAcquire.
const (
	// CRMAdmitted: the request may go; its slot is taken.
	CRMAdmitted CRMVerdict = iota
	// CRMRateLimited: no rate token for Wait.
	CRMRateLimited
	// CRMSlotsTaken: every slot is in use.
	CRMSlotsTaken
	// CRMPaused: the CRM asked for quiet (Retry-After) for Wait.
	CRMPaused
)

// CRMAdmission is CRMAcquire's answer.
type CRMAdmission struct {
	// Verdict says whether the request may go.
	Verdict CRMVerdict
	// Wait is when a token comes free (CRMRateLimited) or the pause ends.
	Wait time.Duration
	// At is the admission time on the limiter's clock, which CRMRelease
	// measures the request's latency from.
	At time.Time
	// Latency is the CRM's smoothed latency as the adaptive state knows it
	// (0 when unknown).
	Latency time.Duration
}

// CRMAcquire admits one CRM request for the whole fleet, or refuses it
// without consuming anything: one script.
func (s *Store) CRMAcquire(ctx context.Context, a CRMAcquireArgs) (CRMAdmission, error) {
	r, err := crmAcquireScript.Run(ctx, s.c, []string{CRMRateKey, CRMInflightKey, CRMPauseKey, CRMAdaptiveKey},
		micros(a.Now), a.Rate.Interval.Microseconds(), a.Rate.Burst, a.Slots, a.Lease.Microseconds(), a.Token,
		boolArg(a.Adaptive), a.StartLimit).Int64Slice()
	if err != nil {
		return CRMAdmission{}, err
	}
	if len(r) != 4 || r[0] < int64(CRMAdmitted) || r[0] > int64(CRMPaused) {
		return CRMAdmission{}, fmt.Errorf("rdb: CRM acquire: unexpected answer %v", r)
	}
	return CRMAdmission{Verdict: CRMVerdict(r[0]), Wait: time.Duration(r[1]) * time.Microsecond,
		At: time.UnixMicro(r[2]), Latency: time.Duration(r[3]) * time.Microsecond}, nil
}

// CRMSignal is what a finished CRM request tells the adaptive limit.
type CRMSignal int

// The signals of CRMRelease.
const (
	// CRMAnswered: the CRM answered; its latency counts.
	CRMAnswered CRMSignal = iota
	// CRMOverloaded: a timeout or 429: the limit is cut.
	CRMOverloaded
	// CRMNoSignal: the request ended for reasons of ours.
	CRMNoSignal
	// CRMFailed: a quick failure (a 5xx, a dropped connection) that may
	// not be overload: it counts in the epoch but not in its goodput, and
	// cuts only when most of the epoch's requests failed.
	CRMFailed
)

// CRMReleaseArgs are the inputs of CRMRelease.
type CRMReleaseArgs struct {
	// Token and AdmittedAt are the slot's, from CRMAcquire.
	Token      string
	AdmittedAt time.Time
	// Signal is how the request went.
	Signal CRMSignal
	// Now is the limiter's time; zero means Redis TIME.
	Now time.Time
	// Cap, Adaptive and StartLimit are CRMAcquire's Slots, Adaptive and
	// StartLimit.
	Cap        int
	Adaptive   bool
	StartLimit int
	// StateTTL forgets the adaptive state of an idle fleet; ProbeAfter
	// and KneeAfter are how long a level that collapsed the CRM, or
	// brought no more goodput, stays out of reach.
	StateTTL, ProbeAfter, KneeAfter time.Duration
}

// AdaptiveVerdict says why the adaptive limit moved (or held).
type AdaptiveVerdict int

// The adaptive limit's verdicts (scripts/crm_release.lua).
const (
	// AdaptiveNone: the release moved nothing.
	AdaptiveNone AdaptiveVerdict = iota
	// AdaptiveCut: the CRM was overloaded: the limit was cut to 0.8×.
	AdaptiveCut
	// AdaptiveCollapse: a request admitted above the best level stalled:
	// the level is avoided for ProbeAfter.
	AdaptiveCollapse
	// AdaptiveMeasured: an epoch measured the level's goodput; the limit
	// climbs one or holds.
	AdaptiveMeasured
	// AdaptiveKnee: more slots brought no more goodput: back to the best
	// level for KneeAfter.
	AdaptiveKnee
)

// String is the verdict's name in logs.
func (v AdaptiveVerdict) String() string {
	switch v {
	case AdaptiveNone:
		return "none"
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

// AdaptiveMove is what a release did to the fleet's adaptive limit.
type AdaptiveMove struct {
	// Limit is the fleet's limit after the release (-1 without adaptation).
	Limit int
	// Verdict is why it moved; AdaptiveNone when it did not.
	Verdict AdaptiveVerdict
	// Goodput is the measured epoch's CRM completions per second across
	// the fleet (AdaptiveMeasured and AdaptiveKnee; 0 otherwise).
	Goodput float64
}

// CRMRelease frees a slot taken by CRMAcquire and, with adaptation, feeds
// the request to the fleet's limit: one script.
func (s *Store) CRMRelease(ctx context.Context, a CRMReleaseArgs) (AdaptiveMove, error) {
	r, err := crmReleaseScript.Run(ctx, s.c, []string{CRMInflightKey, CRMAdaptiveKey},
		a.Token, a.AdmittedAt.UnixMicro(), int(a.Signal), micros(a.Now), a.Cap, boolArg(a.Adaptive), a.StartLimit,
		a.StateTTL.Milliseconds(), a.ProbeAfter.Microseconds(), a.KneeAfter.Microseconds()).Int64Slice()
	if err != nil {
		return AdaptiveMove{}, err
	}
	if len(r) != 3 {
		return AdaptiveMove{}, fmt.Errorf("rdb: CRM release: unexpected answer %v", r)
	}
	return AdaptiveMove{Limit: int(r[0]), Verdict: AdaptiveVerdict(r[1]), Goodput: float64(r[2]) / 1000}, nil
}

// CRMPause holds every worker's CRMAcquire back for d from now (zero: Redis
// TIME), unless a longer pause is in force.
func (s *Store) CRMPause(ctx context.Context, now time.Time, d time.Duration) error {
	return crmPauseScript.Run(ctx, s.c, []string{CRMPauseKey}, micros(now), d.Microseconds()).Err()
}

// CRMLimit is the fleet's adaptive concurrency limit (0 when it has no
// state yet).
func (s *Store) CRMLimit(ctx context.Context) (float64, error) {
	v, err := s.c.HGet(ctx, CRMAdaptiveKey, "limit").Float64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}

// CRMAdaptive is the fleet's adaptive concurrency limit and the goodput
// (CRM requests answered a second) of its last measured epoch; zeros when
// it has no state yet (the adaptive limit is off, or no call was made).
func (s *Store) CRMAdaptive(ctx context.Context) (limit, goodput float64, err error) {
	v, err := s.c.HMGet(ctx, CRMAdaptiveKey, "limit", "goodput").Result()
	if err != nil {
		return 0, 0, err
	}
	limit, _ = strconv.ParseFloat(str(v[0]), 64)
	goodput, _ = strconv.ParseFloat(str(v[1]), 64)
	return limit, goodput, nil
}

// micros is a limiter time for the scripts: µs, or -1 for Redis TIME.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMicro()
}
