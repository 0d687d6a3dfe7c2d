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

// Keys of the intake limiter, shared by every intake process. Each holds a
// GCRA theoretical arrival time in µs.
const (
	// rateKeyPrefix carries one hash tag: the limiter's script checks a
	// client's, a site's and the global bucket at once, which a Redis
	// Cluster allows only within one slot.
	rateKeyPrefix = "leadrelay:{intake:rate}:"
	rateKeyGlobal = rateKeyPrefix + "global"
)

// allowScript decides one request atomically; a refusal consumes nothing.
// A failed authentication (ARGV[2] = 0) takes a token from the client's
// bucket. An authenticated request never looks at that bucket: many
// clients share an address (a NAT, a proxy not listed as trusted), and one
// of them sending bad keys must not lock the others out. Keys of at least
// 16 random characters are not found by guessing at any rate; the bucket
// keeps a guesser from costing more than a 429. An authenticated request
// takes a token from the site's and the global bucket, both or neither.
// Answers {code, wait µs}: 0 allowed, 1 client, 2 site, 3 global.
// KEYS: client, site, global. ARGV: now µs (-1: Redis TIME), authenticated,
// then emission interval µs (0: off) and burst for client, site, global.
var allowScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function gcra(key, iv, burst)
  local tat = math.max(tonumber(redis.call('GET', key) or '0'), now) + iv
  local allowAt = tat - burst * iv
  if now < allowAt then return tat, allowAt - now end
  return tat, 0
end
local function store(key, tat)
  redis.call('SET', key, string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000) + 1))
end
local civ, cb = tonumber(ARGV[3]), tonumber(ARGV[4])
local siv, sb = tonumber(ARGV[5]), tonumber(ARGV[6])
local giv, gb = tonumber(ARGV[7]), tonumber(ARGV[8])
if ARGV[2] == '0' then
  if civ > 0 then
    local tat, wait = gcra(KEYS[1], civ, cb)
    if wait > 0 then return {1, wait} end
    store(KEYS[1], tat)
  end
  return {0, 0}
end
local stat, gtat = 0, 0
if siv > 0 then
  local wait
  stat, wait = gcra(KEYS[2], siv, sb)
  if wait > 0 then return {2, wait} end
end
if giv > 0 then
  local wait
  gtat, wait = gcra(KEYS[3], giv, gb)
  if wait > 0 then return {3, wait} end
end
if siv > 0 then store(KEYS[2], stat) end
if giv > 0 then store(KEYS[3], gtat) end
return {0, 0}
`)

// gcraRate is a rate as the script takes it.
type gcraRate struct{ interval, burst int64 }

// newRate allows perSec requests a second with bursts of ceil(perSec);
// zero, less or infinity is off.
func newRate(perSec float64) gcraRate {
	if !(perSec > 0) || math.IsInf(perSec, 1) {
		return gcraRate{}
	}
	return gcraRate{interval: max(int64(math.Round(1e6/perSec)), 1), burst: max(int64(math.Ceil(perSec)), 1)}
}

// RedisLimiter is the Limiter every intake process shares through Redis:
// a GCRA rate limit per site, one over all sites and one on failed
// authentications per client address. Use NewRedisLimiter.
type RedisLimiter struct {
	rdb                  redis.UniversalClient
	site, global, client gcraRate
	clock                func() time.Time // nil: Redis TIME
}

// RedisLimiterOption tunes NewRedisLimiter.
type RedisLimiterOption func(*RedisLimiter)

// WithFailedAuthRate sets the failed authentications per second a client
// address may make (default DefaultFailedAuthRate; 0 turns the limit off).
func WithFailedAuthRate(perSec float64) RedisLimiterOption {
	return func(l *RedisLimiter) { l.client = newRate(perSec) }
}

// WithRateClock makes the limiter keep time with now instead of Redis TIME.
// Tests use it; in production Redis TIME keeps every intake on one clock.
func WithRateClock(now func() time.Time) RedisLimiterOption {
	return func(l *RedisLimiter) { l.clock = now }
}

// NewRedisLimiter returns a limiter on rdb that lets each site make
// siteRate requests a second and all sites together globalRate, with bursts
// of one second's worth. A client address that fails authentication more
// than DefaultFailedAuthRate times a second gets 429 for its failures (a
// right key still gets in); that limit is off when globalRate is 0. Zero turns a limit off; with every
// limit off NewRedisLimiter returns nil, which Options.Limiter takes as no
// limit.
func NewRedisLimiter(rdb redis.UniversalClient, siteRate, globalRate float64, opts ...RedisLimiterOption) Limiter {
	l := &RedisLimiter{rdb: rdb, site: newRate(siteRate), global: newRate(globalRate)}
	if l.global.interval > 0 {
		l.client = newRate(DefaultFailedAuthRate)
	}
	for _, o := range opts {
		o(l)
	}
	if l.site.interval == 0 && l.global.interval == 0 && l.client.interval == 0 {
		return nil
	}
	return l
}

// Allow implements Limiter with one script call.
func (l *RedisLimiter) Allow(ctx context.Context, site, ip string) (Decision, error) {
	now, authed := int64(-1), 0
	if l.clock != nil {
		now = l.clock().UnixMicro()
	}
	if site != "" {
		authed = 1
	}
	r, err := allowScript.Run(ctx, l.rdb,
		[]string{rateKeyPrefix + "client:" + ClientKey(ip), rateKeyPrefix + "site:" + site, rateKeyGlobal},
		now, authed, l.client.interval, l.client.burst, l.site.interval, l.site.burst, l.global.interval, l.global.burst,
	).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("intake rate limiter: %w", err)
	}
	if len(r) != 2 {
		return Decision{}, fmt.Errorf("intake rate limiter: unexpected script answer %v", r)
	}
	d := Decision{Allowed: r[0] == 0, RetryAfter: time.Duration(r[1]) * time.Microsecond}
	switch r[0] {
	case 1:
		d.Limit = LimitClient
	case 2:
		d.Limit = LimitSite
	case 3:
		d.Limit = LimitGlobal
	}
	return d, nil
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
