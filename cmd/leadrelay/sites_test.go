package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

// TestSitesFileSIGHUP: an intake process started from a sites file reads
// it again on SIGHUP (polling off here, so only the signal can), with the
// new key working and the retired one refused. Before, SIGHUP ended
// intake: Go's default for a signal nobody asked for.
func TestSitesFileSIGHUP(t *testing.T) {
	t.Parallel()
	const oldKey, newKey, blogKey = "shop-old-0123456789abcdef", "shop-new-0123456789abcdef", "blog-key-0123456789abcdef"
	path := filepath.Join(t.TempDir(), "sites.yaml")
	write := func(text string) {
		if err := os.WriteFile(path+".new", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write("sites:\n  shop: {keys: [" + oldKey + "]}\n")
	env := []string{"LEADRELAY_REDIS_URL=" + redistest.Start(t).URL(), "LEADRELAY_SITES_FILE=" + path, "LEADRELAY_DATA_KEYS=" + hatest.DataKeys,
		"LEADRELAY_SITES_FILE_POLL=0", "LEADRELAY_HTTP_ADDR=127.0.0.1:0", "LEADRELAY_UI_USER=" + hatest.OpsUser,
		"LEADRELAY_UI_PASSWORD=" + hatest.OpsPassword, "LEADRELAY_SITE_RATE_LIMIT=0", "LEADRELAY_GLOBAL_RATE_LIMIT=0",
		"LEADRELAY_SHUTDOWN_TIMEOUT=3s", "LEADRELAY_LOG_LEVEL=info"}
	p := hatest.Start(t, hatest.Binary(t), "intake", env, "intake")
	n := 0
	post := func(key string) int {
		t.Helper()
		n++
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/v1/leads", strings.NewReader(fmt.Sprintf(`{"title":"Ann %d","email":"ann@example.com"}`, n)))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("intake does not answer: %v; log:\n%s", err, p.Tail())
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(oldKey); got != http.StatusAccepted {
		t.Fatalf("first lead: %d", got)
	}
	write("sites:\n  shop: {keys: [" + newKey + "]}\n  blog: {keys: [" + blogKey + "]}\n")
	if got := post(newKey); got != http.StatusUnauthorized {
		t.Fatalf("new key before SIGHUP (polling is off): %d, want 401", got)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !hatest.WaitFor(20*time.Second, 10*time.Millisecond, func() bool { return p.Count("sites reloaded", "SIGHUP") > 0 }) {
		t.Fatalf("no reload logged within 20s; log:\n%s", p.Tail())
	}
	for key, want := range map[string]int{newKey: http.StatusAccepted, blogKey: http.StatusAccepted, oldKey: http.StatusUnauthorized} {
		if got := post(key); got != want {
			t.Errorf("after SIGHUP, a lead with %s…: %d, want %d", key[:8], got, want)
		}
	}
	if lines := p.Lines(oldKey); len(lines) > 0 {
		t.Errorf("a key in the log: %q", lines)
	}
}
