package app

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"leadrelay/crmsim"
	"leadrelay/crmsim/crmsimtest"
	"leadrelay/internal/runtest"
)

// startServe runs serve (embedded Redis allowed) with env and returns the
// ops listener's base URL, or the error Run ended with before listening.
func startServe(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	cfg := loadConfig(t, env)
	cmd := runtest.Start(t, "app.Run", func(ctx context.Context, stdout, _ io.Writer) error {
		return Run(ctx, cfg, Roles{Intake: true, Worker: true, Embedded: true}, stdout, zap.NewNop())
	})
	m, err := cmd.AwaitOrEnd(t, 20*time.Second, opsRE)
	if err != nil {
		return "", err
	}
	return m[0][1], nil
}

// TestEmbeddedOpsOpenOnlyForTheDemo is finding 5 of issue 18: serve with
// the embedded Redis, a real CRM and real sites answered /ops/dead and
// /ui/api/queues with 200 and no credentials (and so it would have on
// LEADRELAY_OPS_ADDR=0.0.0.0). The ops listener opens without credentials
// only on loopback with the embedded CRM simulator; otherwise serve
// refuses to start and names what to set. The "real CRM" case failed on
// main: Run started and both routes answered 200.
func TestEmbeddedOpsOpenOnlyForTheDemo(t *testing.T) {
	t.Parallel()
	_, crmURL := crmsimtest.Start(t, crmsim.Config{APIKey: "crm-key-0123456789abcdef"})
	realCRM := map[string]string{"LEADRELAY_CRM_URL": crmURL, "LEADRELAY_CRM_LOGIN": "admin@example.com", "LEADRELAY_CRM_APIKEY": "crm-key-0123456789abcdef"}
	tests := []struct {
		name    string
		env     map[string]string
		refused []string // what the start-up error names; nil: it starts
		open    bool     // the ops routes answer without credentials
	}{
		{"the demo: loopback, simulator", nil, nil, true},
		{"real CRM", realCRM, []string{"LEADRELAY_CRM_URL", "LEADRELAY_UI_USER", "LEADRELAY_UI_PASSWORD"}, false},
		{"ops on every interface", map[string]string{"LEADRELAY_OPS_ADDR": "0.0.0.0:0"}, []string{"LEADRELAY_OPS_ADDR", "LEADRELAY_UI_USER"}, false},
		{"ops on an unnamed host", map[string]string{"LEADRELAY_OPS_ADDR": ":0"}, []string{"LEADRELAY_OPS_ADDR"}, false},
		{"real CRM with credentials", merge(realCRM, map[string]string{"LEADRELAY_UI_USER": opsUser, "LEADRELAY_UI_PASSWORD": opsPass}), nil, false},
		{"real CRM, opened on purpose", merge(realCRM, map[string]string{"LEADRELAY_OPS_NO_AUTH": "true"}), nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := merge(map[string]string{"LEADRELAY_HTTP_ADDR": "127.0.0.1:0", "LEADRELAY_SITES": "shop=site-key-0123456789abcdef", "LEADRELAY_LOG_LEVEL": "warn"}, tc.env)
			ops, err := startServe(t, env)
			if tc.refused != nil {
				if err == nil {
					t.Fatalf("serve started; want it refused naming %v", tc.refused)
				}
				for _, name := range tc.refused {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("start-up error %q does not name %s", err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("serve refused to start: %v", err)
			}
			want := 401
			if tc.open {
				want = 200
			}
			for _, path := range []string{"/ops/dead", "/ui/api/queues"} {
				if got := status(t, "GET", ops+path, "", ""); got != want {
					t.Errorf("GET %s without credentials = %d, want %d", path, got, want)
				}
			}
		})
	}
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
