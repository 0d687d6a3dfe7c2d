package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

// runOnce runs a short command (help, ctl) and returns its output.
func runOnce(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), err
}

// TestHelp: every command's -h and --help lists its subcommands, flags and
// settings on stdout and exits 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"serve", "intake", "worker", "ctl", "version"}},
		{[]string{"help"}, []string{"serve", "ctl"}},
		{[]string{"serve", "--help"}, []string{"Usage: leadrelay serve", "-addr", "LEADRELAY_REDIS_URL", "LEADRELAY_SITES", "LEADRELAY_CRM_APIKEY", "LEADRELAY_MAX_RETRY  ", "default 80"}},
		{[]string{"serve", "-h"}, []string{"-addr", "LEADRELAY_HTTP_ADDR"}},
		{[]string{"intake", "--help"}, []string{"-addr", "LEADRELAY_SITES", "LEADRELAY_SITE_ORIGINS"}},
		{[]string{"worker", "-h"}, []string{"-addr", "LEADRELAY_CRM_URL", "LEADRELAY_CONCURRENCY"}},
		{[]string{"ctl", "--help"}, []string{"queues", "dead list", "dead show", "dead requeue", "dead purge", "lead status", "crm stat", "crm list", "health", "-json", "LEADRELAY_REDIS_URL", "LEADRELAY_CRM_APIKEY"}},
		{[]string{"ctl", "-h"}, []string{"dead list", "LEADRELAY_QUEUE"}},
		{[]string{"ctl", "help"}, []string{"dead list", "LEADRELAY_CRM_URL"}},
		{[]string{"ctl", "dead", "list", "--help"}, []string{"Usage: leadrelay ctl dead list", "-site", "-limit", "-offset"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			out, _, err := runOnce(t, nil, tc.args...)
			if err != nil {
				t.Fatalf("leadrelay %v: %v, want exit 0", tc.args, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("leadrelay %v stdout lacks %q:\n%s", tc.args, w, out)
				}
			}
			if strings.Contains(out, "flag: help requested") {
				t.Errorf("help reported as an error:\n%s", out)
			}
		})
	}
	// The role commands' settings differ: the intake's help lists no CRM key.
	out, _, _ := runOnce(t, nil, "intake", "--help")
	if strings.Contains(out, "LEADRELAY_CRM_APIKEY") {
		t.Errorf("intake --help lists the worker's CRM key")
	}
}

// TestServeBannerFitsCtl: the demo banner's exports point ctl at the
// running serve: ctl queues and ctl crm stat work against it, and a bad
// worker-only setting does not break ctl queues.
func TestServeBannerFitsCtl(t *testing.T) {
	t.Parallel()
	in := startApp(t, map[string]string{"LEADRELAY_HTTP_ADDR": "127.0.0.1:0", "LEADRELAY_LOG_LEVEL": "warn"}, "serve")
	banner := in.stdout.String()
	env := bannerExports(t, banner)
	tests := []struct {
		name    string
		extra   map[string]string
		args    []string
		wantErr string // empty: success
	}{
		{"queues", nil, []string{"queues"}, ""},
		{"crm stat against the simulator", nil, []string{"crm", "stat"}, ""},
		{"worker-only setting bad, queues still work", map[string]string{"LEADRELAY_RETRY_MAX_DELAY": "soon", "LEADRELAY_RECONCILE_UNKNOWN": "maybe"}, []string{"queues"}, ""},
		{"crm setting bad, crm commands say which", map[string]string{"LEADRELAY_CRM_API": "v3"}, []string{"crm", "stat"}, `LEADRELAY_CRM_API must be v1 or v2, got "v3"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tc.extra {
				e[k] = v
			}
			out, stderr, err := runOnce(t, e, append([]string{"ctl"}, tc.args...)...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("ctl %v: %v\n%s", tc.args, err, stderr)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("ctl %v: %v, want %s", tc.args, err, tc.wantErr)
			case tc.wantErr == "" && out == "":
				t.Errorf("ctl %v printed nothing", tc.args)
			}
		})
	}
}

// TestRedisDownOneLine: an unreachable Redis is one clear line naming the
// address, and go-redis's own dial lines do not reach stderr.
func TestRedisDownOneLine(t *testing.T) {
	t.Parallel()
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	_, stderr, err := runOnce(t, map[string]string{"LEADRELAY_REDIS_URL": "redis://" + addr + "/0"}, "ctl", "queues")
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "redis at "+addr+" is unreachable") {
		t.Fatalf("error = %q, want one line naming %s", err, addr)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing besides the error", stderr)
	}
}

// bannerExports reads the banner's export lines into an environment and
// checks that they name Redis and the simulator.
func bannerExports(t *testing.T, banner string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(banner, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	for _, k := range []string{"LEADRELAY_REDIS_URL", "LEADRELAY_CRM_URL", "LEADRELAY_CRM_LOGIN", "LEADRELAY_CRM_APIKEY"} {
		if env[k] == "" {
			t.Fatalf("banner exports no %s:\n%s", k, banner)
		}
	}
	return env
}

// TestTryADeadLead follows the README's "Try a dead lead" walkthrough
// against the demo serve: the reject marker kills a lead, ctl lists it, and
// after the fault is cleared a requeue delivers it once.
func TestTryADeadLead(t *testing.T) {
	t.Parallel()
	in := startApp(t, map[string]string{"LEADRELAY_HTTP_ADDR": "127.0.0.1:0", "LEADRELAY_LOG_LEVEL": "warn"}, "serve")
	banner := in.stdout.String()
	env := bannerExports(t, banner)
	key := regexpFind(banner, `demo site "demo", key ([0-9a-f]+)`)
	sim := regexpFind(banner, `simulator at (http://[0-9.:]+)`)
	faults := func(body string) {
		if err := hatest.SetSimFaults(sim, json.RawMessage(body)); err != nil {
			t.Fatal(err)
		}
	}
	status := func(id string) map[string]any { return siteStatus(t, in.URL, key, id) }
	faults(`{"reject_marker":"#reject"}`) // the README's line
	code, body := postJSON(t, in.URL, key, "", map[string]any{"title": "Bob #reject", "email": "bob@example.com"})
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, body)
	}
	id := body["id"].(string)
	waitUntil(t, 20*time.Second, func() string { return fmt.Sprint(status(id)) }, func() bool { return status(id)["status"] == "dead" })
	out, stderr, err := runOnce(t, env, "ctl", "dead", "list")
	if err != nil || !strings.Contains(out, id) {
		t.Fatalf("ctl dead list: %v %s\n%s", err, stderr, out)
	}
	faults(`{}`)
	if _, stderr, err := runOnce(t, env, "ctl", "dead", "requeue", id); err != nil {
		t.Fatalf("ctl dead requeue: %v %s", err, stderr)
	}
	waitUntil(t, 20*time.Second, func() string { return fmt.Sprint(status(id)) }, func() bool { return status(id)["status"] == "delivered" })
}
