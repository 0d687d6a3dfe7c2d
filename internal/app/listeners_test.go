package app

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

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
	resp, err := http.DefaultClient.Do(sitePost(site, "/v1/leads", key, body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// sitePost is a POST of a JSON body to path on an intake's site listener
// (base URL site) with a site's key.
func sitePost(site, path, key, body string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, site+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return req
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
