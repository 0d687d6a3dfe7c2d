package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/redistest"
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
	want := "http://" + opsAddr + "/ui/"
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
