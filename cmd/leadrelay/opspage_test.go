package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"leadrelay/crmsim"
)

// blogKey is the second site's key in TestOpsPageBrowser.
const blogKey = "e2e-blog-key-0123456789"

// TestOpsPageBrowser drives LeadRelay's ops page (issue 21) in headless
// Chromium against a relay on a real redis-server and the simulator: two
// sites send leads, of which the CRM rejects one (dead) and keeps failing
// another (retrying). The operator reads each site's counts, the CRM's
// circuit and the dead lead's reason, fixes the cause, re-runs the lead
// and sees it delivered, then finds it by e-mail and reads its timeline,
// with its contact masked. No request of the browser's leaves
// 127.0.0.1, asynqmon's included. Screenshots go to t.ArtifactDir (kept
// with go test -artifacts).
func TestOpsPageBrowser(t *testing.T) {
	t.Parallel()
	exe := findChromium(t)
	_, sim, env := backends(t, "v2")
	sim.SetFaults(crmsim.Faults{RejectMarker: "#bad", PoisonMarker: "#poison"})
	env["LEADRELAY_SITES"] = "shop=" + testSiteKey + ",blog=" + blogKey
	// The poisoned lead waits long between runs: it shows as retrying.
	env["LEADRELAY_RETRY_INITIAL"], env["LEADRELAY_RETRY_MAX_DELAY"] = "10m", "10m"
	in := startApp(t, env, "serve")
	ops, _ := url.Parse(in.OpsURL) // the browser sends the credentials as a header
	ops.User, ops.Path = nil, "/"

	send := func(key, title, email string) string {
		code, body := postJSON(t, in.URL, key, "", map[string]any{"title": title, "email": email})
		if code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %v", email, code, body)
		}
		return body["id"].(string)
	}
	for i := range 3 {
		send(testSiteKey, "Order", marker("shop", i))
	}
	send(blogKey, "Question", "reader@example.org")
	dead := send(testSiteKey, "Refund #bad", "ann.dead@example.org")
	retrying := send(blogKey, "Crash #poison", "bob.poison@example.org")
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(countByEmail(sim)) }, func() bool { return len(sim.Leads()) == 4 })
	waitUntil(t, 30*time.Second, func() string { return "the rejected lead never died" }, func() bool {
		return leadStatus(t, in.URL, dead)["status"] == "dead"
	})
	waitUntil(t, 30*time.Second, func() string { return "the poisoned lead never failed" }, func() bool {
		return siteStatus(t, in.URL, blogKey, retrying)["status"] == "retrying"
	})

	ctx := newBrowser(t, exe)
	requests := watchRequests(t, ctx)
	auth := base64.StdEncoding.EncodeToString([]byte(testOpsUser + ":" + testOpsPass))
	shots := t.ArtifactDir()
	t.Logf("screenshots in %s", shots)
	browse(t, ctx, "open the page", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Basic " + auth}})
		return err
	}),
		chromedp.Navigate(ops.String()), chromedp.WaitVisible(chromedp.CSS(`#sites`)))
	screenshot(t, ctx, filepath.Join(shots, "1-overview.png"))

	for _, c := range []struct{ site, col, want string }{
		{"shop", "queued", "0"}, {"shop", "retrying", "0"}, {"shop", "dead", "1"}, {"shop", "delivered", "3"},
		{"blog", "queued", "0"}, {"blog", "retrying", "1"}, {"blog", "dead", "0"}, {"blog", "delivered", "1"},
	} {
		if got := text(t, ctx, fmt.Sprintf(`tr[data-site=%q] td[data-col=%q]`, c.site, c.col)); got != c.want {
			t.Errorf("site %s, %s: the page shows %q, want %s", c.site, c.col, got, c.want)
		}
	}
	if got := text(t, ctx, `#circuit`); !strings.HasPrefix(got, "closed") {
		t.Errorf("circuit: %q, want closed", got)
	}
	row := fmt.Sprintf(`tr[data-lead=%q]`, dead)
	if got := text(t, ctx, row); !strings.Contains(got, "the CRM rejected the lead") || !strings.Contains(got, "a***@example.org") || strings.Contains(got, "ann.dead") {
		t.Errorf("the dead lead's row reads %q; want its reason in words and its contact masked", got)
	}

	// The search comes before the re-run: a delivered lead keeps none of
	// its fields (worker/strip.go), so only an undelivered one is found by
	// its e-mail.
	browse(t, ctx, "search by e-mail", chromedp.Navigate(ops.String()), chromedp.WaitVisible(chromedp.CSS(`#q`)),
		chromedp.SendKeys(chromedp.CSS(`#q`), "ann.dead@example.org"), chromedp.Submit(chromedp.CSS(`#q`)), chromedp.WaitVisible(chromedp.CSS(`#search`)),
		chromedp.Click(chromedp.CSS(`#search a`)), chromedp.WaitVisible(chromedp.CSS(`#timeline`)))
	screenshot(t, ctx, filepath.Join(shots, "2-found-timeline.png"))
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`html`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, `#contact`); got != "R*** · a***@example.org" || strings.Contains(html, "ann.dead") {
		t.Errorf("the lead's contact shows as %q; want it masked, and the address nowhere on the page", got)
	}
	if got := text(t, ctx, `#timeline`); !strings.Contains(got, "dead") {
		t.Errorf("the timeline reads %q; want the run that died", got)
	}

	sim.SetFaults(crmsim.Faults{PoisonMarker: "#poison"}) // the cause is fixed
	browse(t, ctx, "back to the overview", chromedp.Navigate(ops.String()), chromedp.WaitVisible(chromedp.CSS(row+` button`)))
	browse(t, ctx, "re-run the dead lead", chromedp.Click(chromedp.CSS(row+` button`)), chromedp.WaitVisible(chromedp.CSS(`#notice`)))
	if got := text(t, ctx, `#notice`); !strings.Contains(got, "queued again") {
		t.Errorf("after the re-run the page says %q", got)
	}
	waitUntil(t, 30*time.Second, func() string { return "the re-run lead never showed as delivered" }, func() bool {
		browse(t, ctx, "reload the lead", chromedp.Navigate(ops.String()+"leads/"+dead), chromedp.WaitVisible(chromedp.CSS(`#state`)))
		return text(t, ctx, `#state`) == "delivered"
	})
	screenshot(t, ctx, filepath.Join(shots, "3-rerun-delivered.png"))
	if got := text(t, ctx, `#timeline`); !strings.Contains(got, "dead") || !strings.Contains(got, "delivered") {
		t.Errorf("the timeline reads %q; want the run that died and the one that delivered", got)
	}

	browse(t, ctx, "open asynqmon", chromedp.Navigate(ops.String()+"ui/"), chromedp.WaitVisible(chromedp.CSS(`#root div`)))
	screenshot(t, ctx, filepath.Join(shots, "4-asynqmon.png"))
	asked := requests()
	if !slices.ContainsFunc(asked, func(u string) bool { return strings.Contains(u, "/ui/static/js/") }) {
		t.Fatalf("the network log missed asynqmon's scripts, so it proves nothing: %q", asked)
	}
	for _, u := range asked {
		if p, err := url.Parse(u); err != nil || p.Scheme != "data" && p.Scheme != "about" && p.Hostname() != "127.0.0.1" {
			t.Errorf("the browser asked outside 127.0.0.1: %s", u)
		}
	}
	t.Logf("the browser sent %d requests", len(asked))
}

// watchRequests records the URL of every request the browser sends; the
// returned func lists them so far.
func watchRequests(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var urls []string
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), urls...)
	}
}

// browse runs browser actions or fails the test, saying what it was doing.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text is the visible text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// screenshot writes the whole page as a PNG to path.
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	browse(t, ctx, "set the window", chromedp.EmulateViewport(1400, 900))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err = os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
