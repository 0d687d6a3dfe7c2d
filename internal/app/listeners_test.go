package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/internal/redistest"
	"leadrelay/internal/runtest"
)

var (
	siteRE = regexp.MustCompile(`LeadRelay \S+ listening on (http://\S+)`)
	opsRE  = regexp.MustCompile(`ops \(operators only\) listening on (http://\S+)`)
)

// runIntake runs an intake process against a real Redis with env added to
// a minimal production environment, and returns its two base URLs.
func runIntake(t *testing.T, env map[string]string) (site, ops string) {
	t.Helper()
	return runIntakeOn(t, redistest.Start(t), env)
}

// runIntakeOn is runIntake against rds.
func runIntakeOn(t *testing.T, rds *redistest.Server, env map[string]string) (site, ops string) {
	t.Helper()
	return runIntakeLogged(t, rds, env, zap.NewNop())
}

// runIntakeLogged is runIntakeOn logging to log; with LEADRELAY_SITES_FILE
// in env the default LEADRELAY_SITES is left out.
func runIntakeLogged(t *testing.T, rds *redistest.Server, env map[string]string, log *zap.Logger) (site, ops string) {
	t.Helper()
	m := runRole(t, rds, Roles{Intake: true}, env, log).Await(t, 20*time.Second, siteRE, opsRE)
	return m[0][1], m[1][1]
}

// runRole runs app.Run in roles against rds with env added to a minimal
// production environment (site shop, key siteKey), until the test ends.
func runRole(t *testing.T, rds *redistest.Server, roles Roles, env map[string]string, log *zap.Logger) *runtest.Cmd {
	t.Helper()
	full := map[string]string{
		"LEADRELAY_REDIS_URL": rds.URL(), "LEADRELAY_SITES": "shop=" + siteKey, "LEADRELAY_DATA_KEYS": testDataKeys,
		"LEADRELAY_HTTP_ADDR": "127.0.0.1:0", "LEADRELAY_SHUTDOWN_TIMEOUT": "3s",
	}
	if env["LEADRELAY_SITES_FILE"] != "" {
		delete(full, "LEADRELAY_SITES")
	}
	for k, v := range env {
		full[k] = v
	}
	cfg := loadConfig(t, full)
	return runtest.Start(t, "app.Run", func(ctx context.Context, stdout, _ io.Writer) error {
		return Run(ctx, cfg, roles, stdout, log)
	})
}

// loadConfig is config.Load's Config for env; a problem fails t.
func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// siteKey is shop's key in runRole's environment.
const siteKey = "site-key-0123456789abcdef"

// testDataKeys is the data keyring of the relays these tests run.
const testDataKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// postLead posts a JSON lead to an intake of runIntakeOn with a site's key
// and returns the status and Retry-After. A request that fails is an error
// of t (it may run off the test's goroutine) with status 0.
func postLead(t *testing.T, site, key, body string) (code int, retryAfter string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, site+"/v1/leads", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// annLead is a lead of two fields.
const annLead = `{"title":"Ann","email":"ann@example.com"}`

func status(t *testing.T, method, url, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestListenerSplit is finding H1: the UI, /ops/dead and /metrics shared
// the site-facing listener, guarded only by "the client is loopback", so a
// TLS proxy on the same host opened them to everyone. Now the site
// listener does not serve them at all, and the ops listener asks every
// client, loopback included, for credentials.
func TestListenerSplit(t *testing.T) {
	t.Parallel()
	site, ops := runIntake(t, map[string]string{"LEADRELAY_UI_USER": opsUser, "LEADRELAY_UI_PASSWORD": opsPass})
	_, closedOps := runIntake(t, nil) // no credentials, no opt-out
	tests := []struct {
		name, method, url, user string
		want                    int
	}{
		{"site: UI", "GET", site + "/ui/", "", 404},
		{"site: UI with credentials", "GET", site + "/ui/", opsUser, 404},
		{"site: dead letters", "GET", site + "/ops/dead", "", 404},
		{"site: requeue", "POST", site + "/ops/dead/ld_0123456789abcdef01234567/requeue", "", 404},
		{"site: metrics", "GET", site + "/metrics", "", 404},
		{"site: health", "GET", site + "/healthz", "", 200},
		{"site: ready", "GET", site + "/readyz", "", 200},
		{"ops: UI from loopback without credentials", "GET", ops + "/ui/", "", 401},
		{"ops: metrics without credentials", "GET", ops + "/metrics", "", 401},
		{"ops: dead letters without credentials", "GET", ops + "/ops/dead", "", 401},
		{"ops: UI", "GET", ops + "/ui/", opsUser, 200},
		{"ops: metrics", "GET", ops + "/metrics", opsUser, 200},
		{"ops: dead letters", "GET", ops + "/ops/dead", opsUser, 200},
		{"ops: intake is not here", "POST", ops + "/v1/leads", opsUser, 404},
		{"ops without credentials configured", "GET", closedOps + "/ops/dead", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := status(t, tc.method, tc.url, tc.user, opsPass); got != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.url, got, tc.want)
			}
		})
	}
}

// TestMemoryGuard is the memory part of finding H3 against a real
// redis-server: once used_memory reaches the guard's share of maxmemory,
// intake refuses new leads with 503 and Retry-After, and the room left
// takes the writes of the leads already in (a delivered marker).
func TestMemoryGuard(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rds := redistest.Start(t)
	c := rds.Client()
	site, _ := runIntakeOn(t, rds, map[string]string{"LEADRELAY_REDIS_MEMORY_GUARD": "0.5", "LEADRELAY_SITE_RATE_LIMIT": "0", "LEADRELAY_GLOBAL_RATE_LIMIT": "0"})
	tests := []struct {
		name   string
		factor float64 // maxmemory as a multiple of the memory in use
		want   int
	}{
		{"room", 4, http.StatusAccepted},
		{"past half of maxmemory", 1.5, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		// Measured at each step: the first lead opens connections and
		// loads scripts, whose buffers count in used_memory too.
		maxmemory := int64(tc.factor * float64(usedMemory(t, rds)))
		if err := c.ConfigSet(ctx, "maxmemory", strconv.FormatInt(maxmemory, 10)).Err(); err != nil {
			t.Fatal(err)
		}
		var code int
		var retry string
		// The probe reads INFO at most once a second: ask until it has.
		deadline := time.Now().Add(10 * time.Second)
		for code, retry = postLead(t, site, siteKey, annLead); code != tc.want && time.Now().Before(deadline); code, retry = postLead(t, site, siteKey, annLead) {
			time.Sleep(100 * time.Millisecond)
		}
		if code != tc.want {
			t.Fatalf("%s: %d, want %d", tc.name, code, tc.want)
		}
		if code == http.StatusServiceUnavailable && retry != "60" {
			t.Errorf("%s: Retry-After %q, want 60", tc.name, retry)
		}
	}
	if err := c.Set(ctx, "leadrelay:delivered:ld_0123456789abcdef01234567", "x", time.Hour).Err(); err != nil {
		t.Errorf("a delivered marker could not be written under the guard: %v", err)
	}
}

// TestBacklogCaps is finding H3 through the whole intake process: the lead
// store counts what the producer stored, nothing drains (no worker runs),
// and the caps set in the environment refuse what does not fit, with
// Retry-After and nothing stored.
func TestBacklogCaps(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	site, _ := runIntakeOn(t, rds, map[string]string{
		"LEADRELAY_SITES":           "shop=site-key-0123456789abcdef,blog=blog-key-0123456789abcdef",
		"LEADRELAY_SITE_MAX_QUEUED": "3", "LEADRELAY_MAX_QUEUED": "5",
		"LEADRELAY_SITE_RATE_LIMIT": "0", "LEADRELAY_GLOBAL_RATE_LIMIT": "0",
	})
	const shop, blog = siteKey, "blog-key-0123456789abcdef"
	steps := []struct {
		name string
		key  string
		want int
	}{
		{"shop 1", shop, 202}, {"shop 2", shop, 202}, {"shop 3", shop, 202},
		{"shop past its cap", shop, 429},
		{"blog 1", blog, 202}, {"blog 2", blog, 202},
		{"blog past the global cap", blog, 503},
		{"shop still refused", shop, 429},
	}
	for i, s := range steps {
		code, retry := postLead(t, site, s.key, fmt.Sprintf(`{"title":"Ann %d","email":"ann%d@example.com"}`, i, i))
		if code != s.want {
			t.Errorf("%s: %d, want %d", s.name, code, s.want)
		}
		if code != 202 && retry != "60" {
			t.Errorf("%s: Retry-After %q, want 60", s.name, retry)
		}
	}
	qi, err := asynq.NewInspectorFromRedisClient(rds.Client()).GetQueueInfo("leads")
	if err != nil || qi.Size != 5 {
		t.Errorf("queued %v (%v), want the 5 accepted", qi, err)
	}
}

// TestPublicReadiness is finding 8 of issue 18: the site listener's
// /readyz, which the internet reaches, named internals ("redis
// unreachable: dial tcp 127.0.0.1:…: connection refused"; the CRM
// settings to check). It failed on main: the site listener's body held
// the Redis error. Now it says ready or not ready, and the reasons stay on
// the ops listener, behind its credentials.
func TestPublicReadiness(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	site, ops := runIntakeOn(t, rds, map[string]string{"LEADRELAY_UI_USER": opsUser, "LEADRELAY_UI_PASSWORD": opsPass})
	read := func(url, user string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if user != "" {
			req.SetBasicAuth(user, opsPass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := read(site+"/readyz", ""); code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Errorf("site /readyz with Redis up = %d %s, want 200 {\"status\":\"ready\"}", code, body)
	}
	rds.Stop()
	tests := []struct {
		name, url, user string
		want            string // the whole body; "" to check only for the reason
		reason          bool
	}{
		{"site listener", site + "/readyz", "", `{"status":"not ready"}`, false},
		{"ops listener", ops + "/readyz", opsUser, "", true},
	}
	for _, tc := range tests {
		code, body := read(tc.url, tc.user)
		if code != http.StatusServiceUnavailable {
			t.Errorf("%s: /readyz with Redis down = %d, want 503", tc.name, code)
		}
		if tc.want != "" && strings.TrimSpace(body) != tc.want {
			t.Errorf("%s: /readyz body %s, want %s", tc.name, body, tc.want)
		}
		if got := strings.Contains(body, "redis unreachable"); got != tc.reason {
			t.Errorf("%s: reason shown %v, want %v: %s", tc.name, got, tc.reason, body)
		}
	}
}
