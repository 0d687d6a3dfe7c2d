package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"leadrelay/internal/hatest"
)

// browserSiteKey is the demo site's key in the browser test.
const browserSiteKey = "browser-site-key-0123456789"

// findChromium returns Debian's chromium, or skips the test (fails it
// under CI=true, where .ci/run installs chromium).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; .ci/run installs it (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser form test")
	return ""
}

// servePage serves examples/html-form/index.html, pointed at relay with
// the demo key, on ln (a fresh loopback listener when nil), and returns
// its origin.
func servePage(t *testing.T, ln net.Listener, relay string) string {
	t.Helper()
	page, err := os.ReadFile("../../examples/html-form/index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := strings.NewReplacer(`data-relay="RELAY_URL"`, `data-relay="`+relay+`"`, `data-key="SITE_KEY"`, `data-key="`+browserSiteKey+`"`).Replace(string(page))
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(html))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// newBrowser starts headless chromium with a fresh profile; it is stopped
// at cleanup.
func newBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// submitForm opens the page, fills and sends the form, and returns the
// result line once the page has settled (sent or failed).
func submitForm(ctx context.Context, pageURL, name, email string) (state, text string, err error) {
	err = chromedp.Do(ctx,
		chromedp.Navigate(pageURL),
		chromedp.WaitVisible(chromedp.CSS(`#lead-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=description]`), "Sent from headless Chromium"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#result[data-state="sent"], #result[data-state="failed"]`)),
	)
	if err != nil {
		return "", "", err
	}
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#result`), "data-state"))
	if err != nil {
		return "", "", err
	}
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`)))
	return attr.Value, text, err
}

// TestBrowserForm drives examples/html-form in headless Chromium against a
// serve-like relay with the embedded Redis and simulator: from a listed
// origin the lead reaches the simulator once, also when the relay first
// answers 429 (the page waits out Retry-After and resends with the same
// Idempotency-Key); from an unlisted origin the browser's CORS check stops
// it and the page says so.
func TestBrowserForm(t *testing.T) {
	t.Parallel()
	exe := findChromium(t)
	// The listed origin must be known before the relay starts: listen
	// first, serve the page once the relay's address is known.
	listedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listedLn.Close() })
	listedOrigin := "http://" + listedLn.Addr().String()
	in := startApp(t, map[string]string{
		"LEADRELAY_HTTP_ADDR":    "127.0.0.1:0",
		"LEADRELAY_LOG_LEVEL":    "warn",
		"LEADRELAY_SITES":        "demo=" + browserSiteKey,
		"LEADRELAY_SITE_ORIGINS": "demo=" + listedOrigin,
		// One request per 4 s: a second form right after the first is
		// refused with 429 and Retry-After, and the page sends it again
		// with the same key.
		"LEADRELAY_SITE_RATE_LIMIT": "0.25",
	}, "serve")
	sim := regexpFind(in.stdout.String(), `simulator at (http://[0-9.:]+)`)
	if sim == "" {
		t.Fatalf("no simulator address in the banner:\n%s", in.stdout)
	}
	listed := servePage(t, listedLn, in.URL)
	unlisted := servePage(t, nil, in.URL)

	tests := []struct {
		name, page, email, wantState, wantText string
		inCRM                                  bool
		// again is a second form sent at once from the same page: over
		// the rate limit, it is answered 429 first.
		again string
	}{
		{"listed origin, then rate limited", listed, "browser@example.com", "sent", "is on its way", true, "retry@example.com"},
		{"unlisted origin", unlisted, "blocked@example.com", "failed", "Could not reach the server", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := newBrowser(t, exe)
			state, text, err := submitForm(ctx, tc.page, "Browser Test", tc.email)
			if err != nil {
				t.Fatalf("driving the form: %v", err)
			}
			if state != tc.wantState || !strings.Contains(text, tc.wantText) {
				t.Fatalf("page says %s %q, want %s %q", state, text, tc.wantState, tc.wantText)
			}
			emails := []string{tc.email}
			if tc.again != "" {
				state, text, err := submitForm(ctx, tc.page, "Browser Again", tc.again)
				if err != nil || state != "sent" {
					t.Fatalf("second form, over the rate limit: %s %q %v, want it sent after Retry-After", state, text, err)
				}
				emails = append(emails, tc.again)
			}
			if tc.inCRM {
				for _, email := range emails {
					waitUntil(t, 30*time.Second, func() string { return email + " never reached the simulator" }, func() bool {
						return simCount(t, sim, email) == 1
					})
				}
			} else if n := simCount(t, sim, tc.email); n != 0 {
				t.Errorf("a lead from an unlisted origin reached the CRM %d times", n)
			}
		})
	}
}

// simCount is how many leads the simulator holds with this e-mail.
func simCount(t *testing.T, sim, email string) int {
	t.Helper()
	n := 0
	for _, l := range hatest.SimLeads(t, sim) {
		if l.Email == email {
			n++
		}
	}
	return n
}
