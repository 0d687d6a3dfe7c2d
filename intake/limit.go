package intake

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/internal/rdb"
)

// Limiter admits requests to intake. *RedisLimiter implements it; a nil
// Limiter in Options admits everything.
type Limiter interface {
	// Allow admits one request from the client at ip: an authenticated
	// request of site or, when site is "", a failed authentication. An
	// error means the limiter could not decide; intake then admits the
	// request.
	Allow(ctx context.Context, site, ip string) (Decision, error)
}

// Decision is a Limiter's answer. The zero value is a refusal with no hint
// of when to come back.
type Decision struct {
	// Allowed is true when the request may go on.
	Allowed bool
	// RetryAfter is, for a refusal, how long until a request would be let in.
	RetryAfter time.Duration
	// Limit names the limit that refused: LimitSite, LimitGlobal or
	// LimitClient.
	Limit string
}

// The limits a Decision may name.
const (
	LimitSite   = "site"
	LimitGlobal = "global"
	LimitClient = "client"
)

// DefaultFailedAuthRate is the failed authentications per second a client
// address may make before its failed ones get 429 instead of 401; its
// requests with a right key are never refused for it.
const DefaultFailedAuthRate = 20

// RedisLimiter is the Limiter every intake process shares through Redis:
// a GCRA rate limit per site, one over all sites and one on failed
// authentications per client address. Use NewRedisLimiter.
type RedisLimiter struct {
	store                *rdb.Store
	site, global, client rdb.Rate
	siteRates            func(site string) (float64, bool) // nil: site for every site
	clock                func() time.Time                  // nil: Redis TIME
}

// RedisLimiterOption tunes NewRedisLimiter.
type RedisLimiterOption func(*RedisLimiter)

// WithFailedAuthRate sets the failed authentications per second a client
// address may make (default DefaultFailedAuthRate; 0 turns the limit off).
func WithFailedAuthRate(perSec float64) RedisLimiterOption {
	return func(l *RedisLimiter) { l.client = rdb.PerSecond(perSec) }
}

// WithSiteRates gives sites their own rate: rates(site), when it reports
// one, replaces the per-site rate for that site (0: no limit). A
// Directory's SiteRate is such a function.
func WithSiteRates(rates func(site string) (float64, bool)) RedisLimiterOption {
	return func(l *RedisLimiter) { l.siteRates = rates }
}

// WithRateClock makes the limiter keep time with now instead of Redis TIME.
// Tests use it; in production Redis TIME keeps every intake on one clock.
func WithRateClock(now func() time.Time) RedisLimiterOption {
	return func(l *RedisLimiter) { l.clock = now }
}

// NewRedisLimiter returns a limiter on rc that lets each site make
// siteRate requests a second and all sites together globalRate, with bursts
// of one second's worth. A client address that fails authentication more
// than DefaultFailedAuthRate times a second gets 429 for its failures (a
// right key still gets in); that limit is off when globalRate is 0. Zero turns a limit off; with every
// limit off NewRedisLimiter returns nil, which Options.Limiter takes as no
// limit.
func NewRedisLimiter(rc redis.UniversalClient, siteRate, globalRate float64, opts ...RedisLimiterOption) Limiter {
	l := &RedisLimiter{store: rdb.New(rc), site: rdb.PerSecond(siteRate), global: rdb.PerSecond(globalRate)}
	if l.global != (rdb.Rate{}) {
		l.client = rdb.PerSecond(DefaultFailedAuthRate)
	}
	for _, o := range opts {
		o(l)
	}
	if l.site == (rdb.Rate{}) && l.global == (rdb.Rate{}) && l.client == (rdb.Rate{}) && l.siteRates == nil {
		return nil
	}
	return l
}

// Allow implements Limiter with one script call.
func (l *RedisLimiter) Allow(ctx context.Context, site, ip string) (Decision, error) {
	var now time.Time
	if l.clock != nil {
		now = l.clock()
	}
	siteRate := l.site
	if l.siteRates != nil && site != "" {
		if r, ok := l.siteRates(site); ok {
			siteRate = rdb.PerSecond(r)
		}
	}
	// No limit applies (a failed authentication meets only the client's,
	// a site's request only its own and the global one): Redis need not
	// be asked.
	if site == "" && l.client == (rdb.Rate{}) || site != "" && siteRate == (rdb.Rate{}) && l.global == (rdb.Rate{}) {
		return Decision{Allowed: true}, nil
	}
	v, err := l.store.IntakeAllow(ctx, rdb.IntakeAllowArgs{Now: now, Site: site, Client: ClientKey(ip),
		ClientRate: l.client, SiteRate: siteRate, GlobalRate: l.global})
	if err != nil {
		return Decision{}, fmt.Errorf("intake rate limiter: %w", err)
	}
	return Decision{Allowed: v.Limit == rdb.IntakeAllowed, RetryAfter: v.Wait, Limit: limitNames[v.Limit]}, nil
}

// limitNames are the limits a refusal names.
var limitNames = map[rdb.IntakeLimit]string{
	rdb.IntakeClientLimited: LimitClient,
	rdb.IntakeSiteLimited:   LimitSite,
	rdb.IntakeGlobalLimited: LimitGlobal,
}

// ClientKey is the bucket of a client address that every per-client limit
// shares (intake's failed-auth rate, the ops listener's failed logins, the
// connection cap): an IPv4 address itself, an IPv6 address's /64, which one
// host usually holds whole. Anything else is its own bucket.
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// clientIP is the address the request came from. Behind a trusted reverse
// proxy it is the right-most X-Forwarded-For entry that is not itself a
// trusted proxy: entries to its left were written by the client and prove
// nothing. Without trusted proxies forwarded headers are ignored.
func (h *handler) clientIP(r *http.Request) string { return ClientAddr(r, h.proxies) }

// ClientAddr is the address r came from: the connection's, or behind one of
// the trusted reverse proxies the right-most X-Forwarded-For entry that is
// not itself a trusted proxy. The ops listener uses it for its failed-login
// budget and audit lines.
func ClientAddr(r *http.Request, proxies []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !trusted(proxies, host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(hop)
		if err != nil {
			break // a garbled entry: stop at the last address we trust
		}
		if !trusted(proxies, a.String()) {
			return a.Unmap().String()
		}
		host = a.String()
	}
	return host
}

func trusted(proxies []netip.Prefix, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limited asks the limiter about a request of site ("" for a failed
// authentication). When it refuses, limited answers 429 with Retry-After in
// the surface's shape and returns true.
func (h *handler) limited(w http.ResponseWriter, r *http.Request, site string, answer answerFunc) bool {
	if h.limiter == nil {
		return false
	}
	d, err := h.limiter.Allow(r.Context(), site, h.clientIP(r))
	if err != nil {
		// Fail open: the limiter lives in the Redis that the publish needs,
		// so when Redis is down the publish answers 503 anyway, and a limiter
		// fault alone must not turn leads away.
		h.log.Warn("intake rate limiter failed; request admitted", zap.Error(err))
		return false
	}
	if d.Allowed {
		return false
	}
	note(r, "", "", "rate_limited")
	secs := max(int64(math.Ceil(d.RetryAfter.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	answer(w, http.StatusTooManyRequests, "too many requests ("+d.Limit+" limit); retry after "+strconv.FormatInt(secs, 10)+"s")
	return true
}
