package intake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/redistest"
)

var limiterEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newLimiter is a RedisLimiter on miniredis whose clock the test moves.
func newLimiter(t *testing.T, site, global float64, opts ...RedisLimiterOption) (Limiter, *time.Time) {
	t.Helper()
	now := limiterEpoch
	l := NewRedisLimiter(redistest.MiniClient(t), site, global, append([]RedisLimiterOption{WithRateClock(func() time.Time { return now })}, opts...)...)
	return l, &now
}

func TestRedisLimiter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	allow := func(t *testing.T, l Limiter, site, ip string) Decision {
		t.Helper()
		d, err := l.Allow(ctx, site, ip)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	admitted := func(t *testing.T, l Limiter, site, ip, what string) {
		t.Helper()
		if d := allow(t, l, site, ip); !d.Allowed {
			t.Fatalf("%s refused: %+v", what, d)
		}
	}
	if l := NewRedisLimiter(nil, 0, 0); l != nil {
		t.Errorf("all limits off: %v, want nil", l)
	}

	t.Run("site and global", func(t *testing.T) {
		t.Parallel()
		l, now := newLimiter(t, 2, 3)
		for i := 0; i < 2; i++ {
			admitted(t, l, "shop", "192.0.2.1", fmt.Sprint("request ", i))
		}
		d := allow(t, l, "shop", "192.0.2.2")
		if d.Allowed || d.Limit != LimitSite || d.RetryAfter != 500*time.Millisecond {
			t.Fatalf("third shop request: %+v, want site refusal for 500ms", d)
		}
		admitted(t, l, "blog", "192.0.2.1", "blog") // global 3 of 3
		if d := allow(t, l, "blog", "192.0.2.1"); d.Allowed || d.Limit != LimitGlobal {
			t.Fatalf("over the global cap: %+v", d)
		}
		// Refusals consumed nothing: a steady-state interval later one
		// request of each fits again.
		*now = now.Add(500 * time.Millisecond)
		admitted(t, l, "shop", "192.0.2.1", "after 500ms")
	})

	t.Run("failed authentications per client", func(t *testing.T) {
		t.Parallel()
		l, now := newLimiter(t, 100, 100)
		for i := 0; i < DefaultFailedAuthRate; i++ {
			admitted(t, l, "", "2001:db8::1", fmt.Sprint("failure ", i))
		}
		// The same /64 shares the bucket; a right key is not refused for it
		// (finding M4).
		if d := allow(t, l, "", "2001:db8::2"); d.Allowed || d.Limit != LimitClient || d.RetryAfter <= 0 {
			t.Fatalf("failure after the budget: %+v", d)
		}
		admitted(t, l, "shop", "2001:db8::2", "right key after the budget")
		admitted(t, l, "shop", "2001:db8:0:1::1", "another /64")
		admitted(t, l, "", "::ffff:192.0.2.9", "another client")
		*now = now.Add(time.Second / DefaultFailedAuthRate)
		admitted(t, l, "shop", "2001:db8::1", "after a refill")
	})

	t.Run("failed auth limit off with the global limit", func(t *testing.T) {
		t.Parallel()
		l, _ := newLimiter(t, 1, 0)
		for i := 0; i < 3*DefaultFailedAuthRate; i++ {
			admitted(t, l, "", "192.0.2.1", fmt.Sprint("failure ", i))
		}
	})

	t.Run("sites with a rate of their own", func(t *testing.T) {
		t.Parallel()
		own := map[string]float64{"slow": 1, "free": 0}
		l, _ := newLimiter(t, 2, 0, WithSiteRates(func(site string) (float64, bool) {
			r, ok := own[site]
			return r, ok
		}))
		for site, allowed := range map[string]int{"slow": 1, "free": 10, "other": 2} {
			got := 0
			for i := 0; i < 10; i++ {
				if allow(t, l, site, "192.0.2.1").Allowed {
					got++
				}
			}
			if got != allowed {
				t.Errorf("%s: %d of 10 allowed within an instant, want %d", site, got, allowed)
			}
		}
		if l := NewRedisLimiter(nil, 0, 0, WithSiteRates(func(string) (float64, bool) { return 0, false })); l == nil {
			t.Error("with site rates the limiter is not nil: a site may get a rate later")
		}
	})

	t.Run("Redis TIME", func(t *testing.T) {
		t.Parallel()
		l := NewRedisLimiter(redistest.MiniClient(t), 1, 0)
		admitted(t, l, "shop", "192.0.2.1", "first")
		if d := allow(t, l, "shop", "192.0.2.1"); d.Allowed {
			t.Fatalf("second within the second: %+v", d)
		}
	})
}

// TestRateLimitAnswers: both surfaces answer 429 with Retry-After; unknown
// keys get 401 without spending a site's budget, until the client has
// failed too often, and then 429; a right key from that address still
// gets in.
func TestRateLimitAnswers(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(e *env, o *Options) {
		now := limiterEpoch
		o.Limiter = NewRedisLimiter(e.rdb, 2, 100, WithRateClock(func() time.Time { return now }))
	})
	from := func(r *http.Request, ip string) *http.Request {
		r.RemoteAddr = ip + ":4242"
		return r
	}
	for i := 0; i < 50; i++ { // another client guessing keys spends nothing of shop's
		if rec := e.do(t, from(jsonPost(`{"title":"Ann"}`, "guess-guess-guess-"+string(rune('a'+i%26))), "198.51.100.7")); rec.Code != 401 && rec.Code != 429 {
			t.Fatalf("guess %d: %d", i, rec.Code)
		}
	}
	if rec := e.do(t, from(jsonPost(`{"title":"Ann"}`, shopKey), "198.51.100.7")); rec.Code != 202 {
		t.Fatalf("first, a right key from the guessing client's address: %d, want 202", rec.Code)
	}
	shop := "login=shop&apikey=" + url.QueryEscape(shopKey) + "&action=add&title=Bob"
	if rec := e.do(t, dropGet(shop)); !successRE.MatchString(rec.Body.String()) {
		t.Fatalf("second (drop-in): %d %s", rec.Code, rec.Body)
	}
	rec := e.do(t, jsonPost(`{"title":"Eve"}`, shopKey))
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" || decodeBody(t, rec)["error"] == nil {
		t.Errorf("third: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	rec = e.do(t, dropGet(shop))
	if apiStatus(rec) != 429 || rec.Header().Get("Retry-After") != "1" || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(rec.Body.String(), `"Error":"Ошибка добавления лида. too many requests`) {
		t.Errorf("drop-in over the limit: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if rec := e.do(t, jsonPost(`{"title":"Eve"}`, blogKey)); rec.Code != 202 {
		t.Errorf("another site: %d %s", rec.Code, rec.Body)
	}
	if got := e.queueSize(t); got != 3 {
		t.Errorf("tasks = %d, want 3", got)
	}
}

type brokenLimiter struct{}

func (brokenLimiter) Allow(context.Context, string, string) (Decision, error) {
	return Decision{}, errors.New("redis: connection refused")
}

// TestLimiterFailsOpen: a limiter that cannot decide lets leads in.
func TestLimiterFailsOpen(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(_ *env, o *Options) { o.Limiter = brokenLimiter{} })
	if rec := e.do(t, jsonPost(`{"title":"Ann"}`, shopKey)); rec.Code != http.StatusAccepted {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
	if rec := e.do(t, jsonPost(`{"title":"Ann"}`, "wrong-wrong-wrong-wrong")); rec.Code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d", rec.Code)
	}
	if n := e.logs.FilterMessage("intake rate limiter failed; request admitted").Len(); n != 2 {
		t.Errorf("%d warnings, want 2", n)
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name, remote, xff string
		proxies           []netip.Prefix
		want              string
	}{
		{"direct v4", "192.0.2.1:80", "", nil, "192.0.2.1"},
		{"direct v6", "[2001:db8::1]:443", "", nil, "2001:db8::1"},
		{"no port", "pipe", "", nil, "pipe"},
		{"forwarded header ignored without trusted proxies", "192.0.2.1:80", "198.51.100.7", nil, "192.0.2.1"},
		{"forwarded header ignored from an untrusted peer", "192.0.2.1:80", "198.51.100.7", proxies, "192.0.2.1"},
		{"trusted proxy names the client", "10.1.2.3:5000", "198.51.100.7", proxies, "198.51.100.7"},
		{"client-written entries to the left prove nothing", "10.1.2.3:5000", "6.6.6.6, 198.51.100.7", proxies, "198.51.100.7"},
		{"chain of trusted proxies", "10.1.2.3:5000", "198.51.100.7, 10.9.9.9", proxies, "198.51.100.7"},
		{"several headers", "[::1]:5000", "", proxies, "::1"},
		{"garbled entry stops the walk", "10.1.2.3:5000", "198.51.100.7, junk, 10.9.9.9", proxies, "10.9.9.9"},
		{"mapped v4", "10.1.2.3:5000", "::ffff:198.51.100.7", proxies, "198.51.100.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			h := &handler{proxies: tc.proxies}
			if got := h.clientIP(r); got != tc.want {
				t.Errorf("clientIP(%s, XFF %q) = %q, want %q", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
	for ip, want := range map[string]string{
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "::ffff:192.0.2.1": "192.0.2.1", "192.0.2.1": "192.0.2.1", "x": "x",
	} {
		if got := ClientKey(ip); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", ip, got, want)
		}
	}
}

// TestBadKeysDoNotLockOutValidKeys is finding M4: twenty bad keys a second
// from one address (a shared NAT, or a proxy not listed in
// LEADRELAY_TRUSTED_PROXIES) made every site's valid requests from that
// address answer 429. Now the bad keys get 401 and then 429, and the valid
// keys, JSON and drop-in, get in every second.
func TestBadKeysDoNotLockOutValidKeys(t *testing.T) {
	t.Parallel()
	now := limiterEpoch
	e := newEnvWith(t, nil, func(e *env, o *Options) {
		o.Limiter = NewRedisLimiter(e.rdb, 100, 200, WithRateClock(func() time.Time { return now }))
	})
	const nat = "203.0.113.50"
	from := func(r *http.Request) *http.Request { r.RemoteAddr = nat + ":4242"; return r }
	for sec := 0; sec < 5; sec++ {
		var bad []int
		for i := range 2 * DefaultFailedAuthRate { // twice the budget, every second
			rec := e.do(t, from(jsonPost(`{"title":"Ann"}`, fmt.Sprintf("guess-%02d-%04d-guess-guess", sec, i))))
			bad = append(bad, rec.Code)
		}
		if bad[0] != 401 || bad[len(bad)-1] != 429 {
			t.Fatalf("second %d: bad keys got %v, want 401 then 429", sec, bad)
		}
		tests := []struct {
			name string
			req  *http.Request
		}{
			{"JSON", jsonPost(fmt.Sprintf(`{"title":"Lead %d"}`, sec), shopKey)},
			{"JSON, another site", jsonPost(fmt.Sprintf(`{"title":"Lead %d"}`, sec), blogKey)},
			{"drop-in", dropGet("login=shop&apikey=" + url.QueryEscape(shopKey) + "&action=add&title=Drop" + strconv.Itoa(sec))},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s second %d", tc.name, sec), func(t *testing.T) {
				rec := e.do(t, from(tc.req))
				if rec.Code == http.StatusTooManyRequests || (rec.Code != 202 && !successRE.MatchString(rec.Body.String())) {
					t.Errorf("valid key: %d %s", rec.Code, rec.Body)
				}
			})
		}
		now = now.Add(time.Second)
	}
}
