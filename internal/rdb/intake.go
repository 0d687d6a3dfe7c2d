package rdb

import (
	"context"
	"fmt"
	"time"
)

// Intake's state, shared by every intake process: its rate limits
// (IntakeClientRateKey, IntakeSiteRateKey, IntakeGlobalRateKey), the
// sites' lead budgets through batches (IntakeBudgetKey) and the
// signatures seen within the replay window (SignatureKey). What a refusal
// means to a site is intake's.
var (
	intakeAllowScript  = load("intake_allow")
	intakeBudgetScript = load("intake_budget")
)

// IntakeLimit names the limit that refused an intake request.
type IntakeLimit int

// The answers of IntakeAllow.
const (
	// IntakeAllowed: no limit refused.
	IntakeAllowed IntakeLimit = iota
	// IntakeClientLimited: the client address failed authentication too
	// often.
	IntakeClientLimited
	// IntakeSiteLimited: the site's rate limit.
	IntakeSiteLimited
	// IntakeGlobalLimited: the limit over all sites.
	IntakeGlobalLimited
)

// IntakeAllowArgs are the inputs of IntakeAllow.
type IntakeAllowArgs struct {
	// Now is the limiter's time; zero means Redis TIME.
	Now time.Time
	// Site is the authenticated site; "" is a failed authentication.
	Site string
	// Client is the client's bucket: its address, or an IPv6 /64.
	Client string
	// ClientRate limits the client's failed authentications; SiteRate
	// and GlobalRate a site's requests and all sites'. Zero: no limit.
	ClientRate, SiteRate, GlobalRate Rate
}

// IntakeVerdict is IntakeAllow's answer.
type IntakeVerdict struct {
	// Limit is the limit that refused, IntakeAllowed when none did.
	Limit IntakeLimit
	// Wait is, for a refusal, how long until a request would be let in.
	Wait time.Duration
}

// IntakeAllow decides one intake request for the whole fleet: a failed
// authentication takes from its client's bucket, an authenticated request
// from its site's and the global one, both or neither. One script.
func (s *Store) IntakeAllow(ctx context.Context, a IntakeAllowArgs) (IntakeVerdict, error) {
	r, err := s.eval(ctx, intakeAllowScript,
		[]string{IntakeClientRateKey(a.Client), IntakeSiteRateKey(a.Site), IntakeGlobalRateKey},
		micros(a.Now), boolArg(a.Site != ""),
		a.ClientRate.Interval.Microseconds(), a.ClientRate.Burst,
		a.SiteRate.Interval.Microseconds(), a.SiteRate.Burst,
		a.GlobalRate.Interval.Microseconds(), a.GlobalRate.Burst).Int64Slice()
	if err != nil {
		return IntakeVerdict{}, err
	}
	if len(r) != 2 || r[0] < int64(IntakeAllowed) || r[0] > int64(IntakeGlobalLimited) {
		return IntakeVerdict{}, fmt.Errorf("rdb: intake allow: unexpected answer %v", r)
	}
	return IntakeVerdict{Limit: IntakeLimit(r[0]), Wait: time.Duration(r[1]) * time.Microsecond}, nil
}

// IntakeBudget takes n leads from site's budget at rate r, all or none,
// and answers how long until they would fit (0: taken). now zero means
// Redis TIME.
func (s *Store) IntakeBudget(ctx context.Context, site string, n int, r Rate, now time.Time) (time.Duration, error) {
	wait, err := intakeBudgetScript.Run(ctx, s.c, []string{IntakeBudgetKey(site)},
		micros(now), r.Interval.Microseconds(), r.Burst, n).Int64()
	return time.Duration(wait) * time.Microsecond, err
}

// SignatureFirst records a signed request's signature (sig, its MAC in
// hex) of site for ttl, and reports whether it was new.
func (s *Store) SignatureFirst(ctx context.Context, site, sig string, ttl time.Duration) (bool, error) {
	return s.c.SetNX(ctx, SignatureKey(site, sig), 1, ttl).Result()
}

// SignatureForget drops a signature again, so a request that was not
// accepted can be retried as it was signed.
func (s *Store) SignatureForget(ctx context.Context, site, sig string) error {
	return s.c.Del(ctx, SignatureKey(site, sig)).Err()
}
