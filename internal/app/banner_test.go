package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/redistest"
	"leadrelay/internal/runtest"
)

// TestOpsNamedWhereItListens: the banner and the site listener's GET /
// name the ops listener where LEADRELAY_OPS_ADDR put it, and the banner
// names a page for people, not the dead letters' JSON (issue 19.5: GET /
// named the default 8081, and the banner advertised /ops/dead).
func TestOpsNamedWhereItListens(t *testing.T) {
	t.Parallel()
	opsAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	cmd := runRole(t, redistest.Start(t), Roles{Intake: true}, map[string]string{"LEADRELAY_OPS_ADDR": opsAddr}, zap.NewNop())
	m := cmd.Await(t, 20*time.Second, siteRE, opsRE)
	site, banner := m[0][1], cmd.Stdout.String()
	want := "http://" + opsAddr + "/" // LeadRelay's page (issue 21)
	if !strings.Contains(banner, "ops UI: "+want) || strings.Contains(banner, deadPath) {
		t.Errorf("banner does not name %s, or names %s:\n%s", want, deadPath, banner)
	}
	resp, err := http.Get(site + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var root struct {
		OpsUI string `json:"ops_ui"`
	}
	if err := json.Unmarshal(b, &root); err != nil || !strings.HasPrefix(root.OpsUI, want+" ") || strings.Contains(root.OpsUI, "8081") {
		t.Errorf("GET / = %s, want ops_ui naming %s", b, want)
	}
}

// TestOpsHome: the ops listener's front page is LeadRelay's own page at /
// once one is mounted, asynqmon's /ui/ until then.
func TestOpsHome(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(uiPath+"/", http.NotFoundHandler())
	mux.Handle("GET /metrics", http.NotFoundHandler())
	if got := opsHome(mux); got != "/ui/" {
		t.Errorf("without a page at /: %q, want /ui/", got)
	}
	mux.Handle("GET /{$}", http.NotFoundHandler())
	if got := opsHome(mux); got != "/" {
		t.Errorf("with a page at /: %q, want /", got)
	}
}

// TestTakenPort: a listener's address held by another process is, in the
// embedded demo and only for a default address, a free loopback port that
// the banner prints; anywhere else an error naming the variable to set
// (issue 19.5: serve exited on a taken 8081 without either).
func TestTakenPort(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	taken := held.Addr().String()
	rds := redistest.Start(t)
	tests := []struct {
		name    string
		env     map[string]string
		setOps  bool // LEADRELAY_OPS_ADDR names the taken address; else it is the default
		wantErr string
	}{
		{"demo, default ops address", nil, false, ""},
		{"demo, LEADRELAY_OPS_ADDR set", nil, true, "set LEADRELAY_OPS_ADDR to a free address"},
		{"real Redis, default ops address", map[string]string{"LEADRELAY_REDIS_URL": rds.URL(), "LEADRELAY_SITES": "shop=" + siteKey, "LEADRELAY_DATA_UNENCRYPTED": "true"}, false, "set LEADRELAY_OPS_ADDR to a free address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"LEADRELAY_HTTP_ADDR": "127.0.0.1:0", "LEADRELAY_SHUTDOWN_TIMEOUT": "3s"}
			if tc.setOps {
				env["LEADRELAY_OPS_ADDR"] = taken
			}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg := loadConfig(t, env)
			cfg.Ops.Addr = taken // the default, as if 8081 were taken
			cmd := runtest.Start(t, "app.Run", func(ctx context.Context, stdout, _ io.Writer) error {
				return Run(ctx, cfg, Roles{Intake: true, Embedded: true}, stdout, zap.NewNop())
			})
			m, err := cmd.AwaitOrEnd(t, 20*time.Second, opsRE)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tc.wantErr == "" && m[0][1] == "http://"+taken:
				t.Errorf("ops listens on the taken %s", taken)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), taken)):
				t.Errorf("Run: %v, want an error naming %s and %q", err, taken, tc.wantErr)
			}
		})
	}
}
