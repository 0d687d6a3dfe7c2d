package app

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"leadrelay/intake"
	"leadrelay/internal/redistest"
)

// siteVersion is one version of a sites file: each site's keys, and any
// further lines of a site's settings.
type siteVersion map[string][]string

// render writes v as a sites file; extra adds lines to a site.
func (v siteVersion) render(extra map[string]string) string {
	var b strings.Builder
	b.WriteString("sites:\n")
	for _, name := range slices.Sorted(maps.Keys(v)) {
		fmt.Fprintf(&b, "  %s:\n    keys: [%s]\n%s", name, strings.Join(v[name], ", "), extra[name])
	}
	return b.String()
}

// keys is every key of v.
func (v siteVersion) keys() map[string]bool {
	out := map[string]bool{}
	for _, ks := range v {
		for _, k := range ks {
			out[k] = true
		}
	}
	return out
}

// writeAtomically replaces path's contents the way an operator's tool
// should: a new file renamed over the old one.
func writeAtomically(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func key(name string) string { return name + "-key-0123456789abcdef" }

// postSiteLead posts a new lead with key and returns the status (0: no answer).
func postSiteLead(client *http.Client, site, key string, n int64) int {
	resp, err := client.Do(sitePost(site, "/v1/leads", key, fmt.Sprintf(`{"title":"Ann %d","email":"ann@example.com"}`, n)))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestSitesReloadUnderLoad is issue 19's "thirty sites managed without
// restarts": intake runs from a sites file while a few clients send leads
// without pause, and the file is rewritten ten times: sites added and
// removed, keys rotated with an overlap in which both work. Every request
// with a key valid across the rewrite gets 2xx; each new site and key
// works after its reload and each retired key stops working; a bad file
// then is refused with every problem logged, and the running sites stay.
func TestSitesReloadUnderLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	versions := []siteVersion{
		{"shop": {key("shop1")}, "steady": {key("steady")}},
		{"shop": {key("shop1")}, "steady": {key("steady")}, "blog": {key("blog1")}},               // a site added
		{"shop": {key("shop1"), key("shop2")}, "steady": {key("steady")}, "blog": {key("blog1")}}, // rotation begins
		{"shop": {key("shop2")}, "steady": {key("steady")}, "blog": {key("blog1")}},               // the old key retired
		{"shop": {key("shop2")}, "steady": {key("steady")}, "blog": {key("blog1")}, "news": {key("news1")}},
		{"shop": {key("shop2")}, "steady": {key("steady")}, "blog": {key("blog1"), key("blog2")}, "news": {key("news1")}},
		{"shop": {key("shop2")}, "steady": {key("steady")}, "blog": {key("blog2")}, "news": {key("news1")}},
		{"shop": {key("shop2")}, "steady": {key("steady")}, "blog": {key("blog2")}}, // a site removed
		{"shop": {key("shop2")}, "steady": {key("steady")}, "blog": {key("blog2")}, "shop.de": {key("shopde1")}},
		{"shop": {key("shop2"), key("shop3")}, "steady": {key("steady")}, "blog": {key("blog2")}, "shop.de": {key("shopde1")}},
		{"shop": {key("shop3")}, "steady": {key("steady")}, "blog": {key("blog2")}, "shop.de": {key("shopde1")}},
	}
	// Settings change along the way too (a rate of the site's own, origins).
	extra := map[string]string{"steady": "    rate_limit: 0\n    origins: [https://steady.example]\n"}
	writeAtomically(t, path, versions[0].render(extra))
	core, logs := observer.New(zapcore.InfoLevel)
	site, _ := runIntakeLogged(t, redistest.Start(t), map[string]string{
		"LEADRELAY_SITES_FILE": path, "LEADRELAY_SITES_FILE_POLL": "20ms",
		"LEADRELAY_SITE_RATE_LIMIT": "0", "LEADRELAY_GLOBAL_RATE_LIMIT": "0",
		"LEADRELAY_SITE_MAX_QUEUED": "0", "LEADRELAY_MAX_QUEUED": "0", "LEADRELAY_REDIS_MEMORY_GUARD": "0",
	}, zap.New(core))

	// The clients: each request holds the read lock, so the driver can
	// change which keys are safe only between requests.
	var (
		mu      sync.RWMutex
		safe    []string // keys valid in the running file and the next
		n       atomic.Int64
		badMu   sync.Mutex
		bad     []string
		stop    = make(chan struct{})
		clients sync.WaitGroup
	)
	setSafe := func(from, to siteVersion) {
		mu.Lock()
		defer mu.Unlock()
		next := to.keys()
		safe = safe[:0]
		for k := range from.keys() {
			if next[k] {
				safe = append(safe, k)
			}
		}
		sort.Strings(safe)
	}
	setSafe(versions[0], versions[0])
	client := &http.Client{Timeout: 10 * time.Second}
	for c := 0; c < 4; c++ {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.RLock()
				k := safe[(i+c)%len(safe)]
				status := postSiteLead(client, site, k, n.Add(1))
				mu.RUnlock()
				if status < 200 || status > 299 {
					badMu.Lock()
					bad = append(bad, fmt.Sprintf("%s…: %d", k[:8], status))
					badMu.Unlock()
				}
			}
		}()
	}
	stopClients := sync.OnceFunc(func() {
		close(stop)
		clients.Wait()
	})
	defer stopClients()

	// until waits, at most 20s, until a new lead with key gets want (2xx
	// for any 2xx), and for the clients to send some more under that set.
	until := func(what, key string, want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := postSiteLead(client, site, key, n.Add(1))
			if got == want || want == 202 && got >= 200 && got <= 299 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: a lead with %s… still gets %d, want %d", what, key[:8], got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for sent := n.Load(); n.Load() < sent+20; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the clients sent nothing more within 20s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := 1; i < len(versions); i++ {
		prev, cur := versions[i-1], versions[i]
		setSafe(prev, cur)
		writeAtomically(t, path, cur.render(extra))
		newKeys, oldKeys := cur.keys(), prev.keys()
		for _, k := range slices.Sorted(maps.Keys(newKeys)) {
			if !oldKeys[k] {
				until(fmt.Sprintf("version %d, new key", i), k, 202)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(oldKeys)) {
			if !newKeys[k] {
				until(fmt.Sprintf("version %d, retired key", i), k, http.StatusUnauthorized)
			}
		}
		setSafe(cur, cur)
	}
	if reloads := logs.FilterMessage("sites reloaded").Len(); reloads != len(versions)-1 {
		t.Errorf("%d reloads logged, want %d", reloads, len(versions)-1)
	}

	// A bad file: refused whole, every problem logged, the running sites
	// kept (the last version's keys work, the bad file's new site does not).
	last := versions[len(versions)-1]
	badFile := last.render(map[string]string{"shop": "    kyes: [x]\n"}) + "  evil:\n    keys: [short]\n"
	writeAtomically(t, path, badFile)
	deadline := time.Now().Add(20 * time.Second)
	for logs.FilterMessage("sites file refused; the running sites stay").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no refusal logged within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	refused := logs.FilterMessage("sites file refused; the running sites stay").All()[0]
	problems := fmt.Sprint(refused.ContextMap()["problems"])
	for _, want := range []string{"kyes is not a setting of a site", `key of site "evil" is shorter than 16 characters`} {
		if !strings.Contains(problems, want) {
			t.Errorf("refusal logged %s, want it to name %q", problems, want)
		}
	}
	if strings.Contains(problems, key("shop3")) {
		t.Errorf("refusal logged a key: %s", problems)
	}
	if got := postSiteLead(client, site, "short", n.Add(1)); got != http.StatusUnauthorized {
		t.Errorf("the refused file's key got %d, want 401", got)
	}
	for k := range last.keys() {
		if got := postSiteLead(client, site, k, n.Add(1)); got < 200 || got > 299 {
			t.Errorf("a running key got %d after the refused file", got)
		}
	}

	stopClients()
	if len(bad) > 0 {
		t.Errorf("%d of %d requests with a valid key got no 2xx during the reloads, e.g. %q", len(bad), n.Load(), bad[:min(len(bad), 5)])
	}
	t.Logf("%d leads sent during %d reloads and one refused file", n.Load(), len(versions)-1)
}

// TestSitesReloader: a poll applies new contents only once two reads in a
// row agree (a file caught half-written is never applied), a SIGHUP at
// once; contents rewritten as they were change nothing; and sites from
// LEADRELAY_SITES have nothing to reload, which a SIGHUP says.
func TestSitesReloader(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	v1 := siteVersion{"shop": {key("shop1")}}
	v2 := siteVersion{"shop": {key("shop1")}, "blog": {key("blog1")}}
	writeAtomically(t, path, v1.render(nil))
	cfg := loadConfig(t, map[string]string{"LEADRELAY_REDIS_URL": "redis://127.0.0.1:6379/0", "LEADRELAY_SITES_FILE": path})
	core, logs := observer.New(zapcore.InfoLevel)
	r := &sitesReloader{cfg: cfg, dir: intake.NewDirectory(intakeSites(cfg.Intake.Sites), nil), log: zap.New(core), running: cfg.Intake.Sites}
	names := func() string { return strings.Join(r.running.Names(), ",") }

	r.reload("change", false)
	r.reload("change", false)
	if logs.Len() != 0 || names() != "shop" {
		t.Errorf("unchanged file: %d log lines, sites %s", logs.Len(), names())
	}
	writeAtomically(t, path, v2.render(nil))
	if r.reload("change", false); names() != "shop" {
		t.Errorf("applied after one read: %s", names())
	}
	if r.reload("change", false); names() != "blog,shop" {
		t.Errorf("not applied after two reads: %s", names())
	}
	writeAtomically(t, path, v1.render(nil))
	if r.reload("SIGHUP", true); names() != "shop" {
		t.Errorf("SIGHUP did not apply at once: %s", names())
	}
	if got := logs.FilterMessage("sites reloaded").Len(); got != 2 {
		t.Errorf("%d reloads logged, want 2", got)
	}

	// The signal through run, with polling off and with sites from the
	// environment.
	for _, tc := range []struct {
		name, file, want string
	}{
		{"sites file", path, "sites reloaded"},
		{"LEADRELAY_SITES", "", "SIGHUP: the sites come from LEADRELAY_SITES"},
	} {
		core, logs := observer.New(zapcore.InfoLevel)
		r := &sitesReloader{cfg: cfg, dir: r.dir, log: zap.New(core), running: r.running}
		r.cfg.Intake.SitesFile, r.cfg.Intake.SitesPoll = tc.file, 0
		ctx, cancel := context.WithCancel(t.Context())
		hup := make(chan os.Signal, 1)
		done := make(chan struct{})
		go func() { r.run(ctx, hup); close(done) }()
		hup <- syscall.SIGHUP
		deadline := time.Now().Add(10 * time.Second)
		for logs.FilterMessageSnippet(tc.want).Len() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
		if logs.FilterMessageSnippet(tc.want).Len() != 1 {
			t.Errorf("%s: SIGHUP logged %v, want %q", tc.name, logs.All(), tc.want)
		}
	}
}
