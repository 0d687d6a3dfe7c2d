package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"leadrelay/crmsim"
	"leadrelay/crmsim/crmsimtest"
	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
	"leadrelay/internal/runtest"
)

const (
	testCRMKey  = "e2e-crm-key-0123456789"
	testSiteKey = "e2e-site-key-0123456789"
	testOpsUser = "ops"
	testOpsPass = "e2e-ops-password"
)

// instance is one leadrelay command running in-process through run().
type instance struct {
	URL string
	// OpsURL is the ops listener's, with the test's credentials in it
	// (http.Get sends them as basic auth).
	OpsURL string
	stdout *runtest.Output
	stderr *runtest.Output
	cmd    *runtest.Cmd
}

var (
	listenRE = regexp.MustCompile(`LeadRelay \S+ listening on (http://[0-9.:]+)`)
	opsRE    = regexp.MustCompile(`ops \(operators only\) listening on http://([0-9.:]+)`)
)

// startApp runs `leadrelay args…` with env as its whole environment, waits
// until it listens, and stops it at cleanup.
func startApp(t *testing.T, env map[string]string, args ...string) *instance {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	cmd := runtest.Start(t, fmt.Sprint("leadrelay ", args), func(ctx context.Context, stdout, stderr io.Writer) error {
		return run(ctx, args, getenv, stdout, stderr)
	})
	m := cmd.Await(t, 20*time.Second, listenRE, opsRE)
	return &instance{
		URL:    m[0][1],
		OpsURL: "http://" + testOpsUser + ":" + testOpsPass + "@" + m[1][1],
		stdout: cmd.Stdout, stderr: cmd.Stderr, cmd: cmd,
	}
}

// stop shuts the instance down gracefully and waits (bounded) for it.
func (in *instance) stop(t *testing.T) { in.cmd.Stop(t) }

// startSim runs the CRM simulator in-process on a loopback port.
func startSim(t *testing.T) (*crmsim.Sim, string) {
	t.Helper()
	return crmsimtest.Start(t, crmsim.Config{APIKey: testCRMKey, Seed: 1})
}

// backends starts a private Redis and the simulator, and returns them
// with the environment of a relay (API version api) against them.
func backends(t *testing.T, api string) (*redistest.Server, *crmsim.Sim, map[string]string) {
	t.Helper()
	rds := redistest.Start(t)
	sim, crmURL := startSim(t)
	return rds, sim, baseEnv(rds.URL(), crmURL, api)
}

// testDataKeys is the tests' data keyring (LEADRELAY_DATA_KEYS).
const testDataKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// baseEnv is the environment of a relay against redisURL and the simulator
// at crmURL, with retries short enough for tests.
func baseEnv(redisURL, crmURL, api string) map[string]string {
	return map[string]string{
		"LEADRELAY_REDIS_URL":         redisURL,
		"LEADRELAY_DATA_KEYS":         testDataKeys,
		"LEADRELAY_CRM_URL":           crmURL,
		"LEADRELAY_CRM_API":           api,
		"LEADRELAY_CRM_LOGIN":         "admin@example.com",
		"LEADRELAY_CRM_APIKEY":        testCRMKey,
		"LEADRELAY_CRM_TIMEOUT":       "2s",
		"LEADRELAY_RECONCILE_AFTER":   "3s",
		"LEADRELAY_SITES":             "shop=" + testSiteKey,
		"LEADRELAY_HTTP_ADDR":         "127.0.0.1:0",
		"LEADRELAY_UI_USER":           testOpsUser,
		"LEADRELAY_UI_PASSWORD":       testOpsPass,
		"LEADRELAY_RETRY_INITIAL":     "100ms",
		"LEADRELAY_RETRY_MAX_DELAY":   "1s",
		"LEADRELAY_BREAKER_COOLDOWN":  "500ms",
		"LEADRELAY_CRM_RATE_LIMIT":    "0",
		"LEADRELAY_SITE_RATE_LIMIT":   "0",
		"LEADRELAY_GLOBAL_RATE_LIMIT": "0",
		"LEADRELAY_SHUTDOWN_TIMEOUT":  "3s",
		"LEADRELAY_LOG_LEVEL":         "warn",
	}
}

// postJSON sends a lead to the JSON API and returns the status and body.
func postJSON(t *testing.T, base, key, idemKey string, lead map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(lead)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/leads", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s %s: %d, body not JSON: %q", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return resp.StatusCode, m
}

// leadStatus asks intake, as the tests' site, where a lead is.
func leadStatus(t *testing.T, base, id string) map[string]any {
	t.Helper()
	return siteStatus(t, base, testSiteKey, id)
}

// siteStatus asks intake, as the site with key, where lead id is.
func siteStatus(t *testing.T, base, key, id string) map[string]any {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/leads/"+url.PathEscape(id), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	_, m := doJSON(t, req)
	return m
}

// waitUntil polls cond (bounded) and fails the test with msg when it never holds.
func waitUntil(t *testing.T, d time.Duration, msg func() string, cond func() bool) {
	t.Helper()
	if !hatest.WaitFor(d, 50*time.Millisecond, cond) {
		t.Fatalf("timed out after %s: %s", d, msg())
	}
}

// countByEmail counts the simulator's leads per e-mail.
func countByEmail(sim *crmsim.Sim) map[string]int {
	out := map[string]int{}
	for _, l := range sim.Leads() {
		out[l.Email]++
	}
	return out
}

func marker(prefix string, i int) string { return fmt.Sprintf("%s-%04d@example.com", prefix, i) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func regexpFind(s, re string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}
