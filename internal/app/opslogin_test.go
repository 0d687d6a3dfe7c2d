package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"leadrelay/internal/testclock"
)

// loginProbe drives an OpsGuard with a clock of its own.
type loginProbe struct {
	t     *testing.T
	h     http.Handler
	clock *testclock.Clock
}

func newLoginProbe(t *testing.T) *loginProbe {
	p := &loginProbe{t: t, clock: testclock.New(time.Unix(1_900_000_000, 0))}
	p.h = OpsGuard(&okHandler{}, OpsGuardOptions{User: opsUser, Password: opsPass, Now: p.clock.Now}, nil)
	return p
}

// try sends one request as user with pass (none when user is "") from
// remote, with cookies, and returns the status and the cookies set.
func (p *loginProbe) try(remote, user, pass string, cookies ...*http.Cookie) (int, []*http.Cookie) {
	q := opsReq{method: "GET", path: "/ui/", remote: remote}
	r := q.build()
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Code, rec.Result().Cookies()
}

// guess spends n wrong passwords of user from remote and wants 401 each.
func (p *loginProbe) guess(n int, remote, user string) {
	p.t.Helper()
	for i := range n {
		if got, _ := p.try(remote, user, "guess"); got != http.StatusUnauthorized {
			p.t.Fatalf("guess %d of %s from %s = %d, want 401", i+1, user, remote, got)
		}
	}
}

// TestOpsBruteForce is finding M3: basic auth took any number of guesses.
// A client gets DefaultFailedLogins wrong passwords, then 429 for every
// request, a right password included (or a guesser ignoring the 429s would
// learn when it is right); another address is not affected, and the budget
// comes back with time.
func TestOpsBruteForce(t *testing.T) {
	t.Parallel()
	p := newLoginProbe(t)
	const attacker, colleague = "198.51.100.7:5000", "198.51.100.8:5000"
	type step struct {
		name   string
		remote string
		good   bool // the right password, else a guess
		wait   time.Duration
		want   int
	}
	var steps []step
	for i := range DefaultFailedLogins {
		steps = append(steps, step{"guess " + string(rune('1'+i)), attacker, false, 0, 401})
	}
	steps = append(steps,
		step{"one guess too many", attacker, false, 0, 429},
		step{"the right password from the guesser", attacker, true, 0, 429},
		step{"another address", colleague, true, 0, 204},
		step{"another address guessing", colleague, false, 0, 401},
		step{"one comes back after the refill", attacker, false, DefaultFailedLoginRefill, 401},
		step{"and is spent again", attacker, true, 0, 429},
	)
	for _, s := range steps {
		p.clock.Advance(s.wait)
		pass := "guess"
		if s.good {
			pass = opsPass
		}
		if got, _ := p.try(s.remote, opsUser, pass); got != s.want {
			t.Errorf("%s: %d, want %d", s.name, got, s.want)
		}
	}
}

// TestOpsLoginBudget is finding 4 of issue 18: the failed-login budget was
// keyed by the exact address, so every address of one IPv6 /64 guessed
// afresh; the whole table was cleared at 10,000 clients, unblocking a
// guesser; and a blocked address refused the right password too, so a
// guesser behind an operators' shared proxy locked every operator out.
// Each subtest failed on main before the budget was rebuilt.
func TestOpsLoginBudget(t *testing.T) {
	t.Parallel()
	t.Run("one IPv6 /64 is one client", func(t *testing.T) {
		t.Parallel()
		p := newLoginProbe(t)
		for i := range DefaultFailedLogins {
			p.guess(1, fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1), opsUser)
		}
		if got, _ := p.try("[2001:db8:1:2:ffff::1]:5000", opsUser, "guess"); got != http.StatusTooManyRequests {
			t.Errorf("another address of the /64 guessed: %d, want 429", got)
		}
		if got, _ := p.try("[2001:db8:1:3::1]:5000", opsUser, opsPass); got != http.StatusNoContent {
			t.Errorf("the next /64: %d, want 204", got)
		}
	})
	t.Run("a flood of addresses does not unblock a guesser", func(t *testing.T) {
		t.Parallel()
		p := newLoginProbe(t)
		const attacker = "198.51.100.7:5000"
		p.guess(DefaultFailedLogins, attacker, opsUser)
		for i := range 10_001 {
			remote := fmt.Sprintf("10.%d.%d.%d:5000", i>>16&255, i>>8&255, i&255)
			p.guess(1, remote, fmt.Sprintf("user%d", i))
		}
		if got, _ := p.try(attacker, opsUser, "guess"); got != http.StatusTooManyRequests {
			t.Errorf("the guesser after 10,001 other addresses: %d, want 429", got)
		}
	})
	t.Run("the user name is guessed from many addresses", func(t *testing.T) {
		t.Parallel()
		p := newLoginProbe(t)
		const perUser = DefaultUserFailedLogins
		for i := range perUser / 5 {
			p.guess(5, fmt.Sprintf("192.0.2.%d:5000", i+1), opsUser)
		}
		if got, _ := p.try("203.0.113.1:5000", opsUser, "guess"); got != http.StatusTooManyRequests {
			t.Errorf("a fresh address guessing %s: %d, want 429", opsUser, got)
		}
		if got, _ := p.try("203.0.113.1:5000", "other", "guess"); got != http.StatusUnauthorized {
			t.Errorf("another user name: %d, want 401", got)
		}
	})
	t.Run("operators behind the guesser's proxy stay in", func(t *testing.T) {
		t.Parallel()
		p := newLoginProbe(t)
		const proxy = "203.0.113.5:5000"
		code, cookies := p.try(proxy, opsUser, opsPass)
		if code != http.StatusNoContent {
			t.Fatalf("sign-in: %d, want 204", code)
		}
		p.guess(DefaultFailedLogins, proxy, opsUser)
		for range 3 { // the guesser goes on, and is refused unchecked
			if got, _ := p.try(proxy, opsUser, "guess"); got != http.StatusTooManyRequests {
				t.Fatalf("guess past the budget: %d, want 429", got)
			}
		}
		if got, _ := p.try(proxy, opsUser, opsPass, cookies...); got != http.StatusNoContent {
			t.Errorf("the operator who signed in before, right password: %d, want 204", got)
		}
		if got, _ := p.try(proxy, opsUser, opsPass); got != http.StatusTooManyRequests {
			t.Errorf("a client without a device token: %d, want 429", got)
		}
		if got, _ := p.try(proxy, opsUser, "guess", cookies...); got != http.StatusUnauthorized {
			t.Errorf("a wrong password with the device token: %d, want 401", got)
		}
		p.clock.Advance(DefaultFailedLoginRefill)
		if got, _ := p.try(proxy, opsUser, opsPass); got != http.StatusNoContent {
			t.Errorf("the right password one refill after the last guess: %d, want 204", got)
		}
	})
	t.Run("a device token binds its user and expires", func(t *testing.T) {
		t.Parallel()
		p := newLoginProbe(t)
		_, cookies := p.try("192.0.2.9:5000", opsUser, opsPass)
		if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
			t.Fatalf("device cookie = %v, want one, HttpOnly, SameSite=Strict", cookies)
		}
		p.guess(DefaultFailedLogins, "192.0.2.9:5000", opsUser)
		v := []byte(cookies[0].Value)
		v[20] ^= 'A' ^ 'B' // one character of the id changed
		forged := &http.Cookie{Name: cookies[0].Name, Value: string(v)}
		if got, _ := p.try("192.0.2.9:5000", opsUser, opsPass, forged); got != http.StatusTooManyRequests {
			t.Errorf("a forged token: %d, want 429", got)
		}
		p.guess(DefaultFailedLogins, "192.0.2.10:5000", "other")
		if got, _ := p.try("192.0.2.10:5000", "other", "guess", cookies...); got != http.StatusTooManyRequests {
			t.Errorf("the token under another user name: %d, want 429", got)
		}
		p.clock.Advance(31 * 24 * time.Hour)
		p.guess(DefaultFailedLogins, "192.0.2.9:5000", opsUser)
		if got, _ := p.try("192.0.2.9:5000", opsUser, opsPass, cookies...); got != http.StatusTooManyRequests {
			t.Errorf("an expired token: %d, want 429", got)
		}
	})
}

// TestFailTableEvictsSoonestFull: a full table drops the entry whose
// bucket refills first, one at a time, and keeps the long-blocked ones.
func TestFailTableEvictsSoonestFull(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	tab := newFailTable(3, time.Second, 4)
	for range 5 {
		tab.spend("blocked", now)
	}
	for i := range 20 {
		tab.spend(fmt.Sprint("one-", i), now)
		if len(tab.entries) > 4 || len(tab.order) != len(tab.entries) {
			t.Fatalf("%d entries (%d ordered), want at most 4", len(tab.entries), len(tab.order))
		}
	}
	if tab.wait("blocked", now) == 0 {
		t.Error("the blocked entry was evicted for entries that refill sooner")
	}
	if tab.wait("one-19", now) != 0 || tab.entries["one-19"] == nil {
		t.Error("the newest entry is missing")
	}
}
