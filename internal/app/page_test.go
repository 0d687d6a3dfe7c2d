package app

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOpsPageGuarded: LeadRelay's page (issue 21) is served on the ops
// listener only, behind its credentials, with a policy that loads nothing
// from outside; its re-run is refused without the page's CSRF token (or
// with another), and taken with it.
func TestOpsPageGuarded(t *testing.T) {
	t.Parallel()
	site, ops := runIntakeWithOps(t, nil)
	const id = "ld_0123456789abcdef01234567"
	tests := []struct {
		name, method, url, user string
		want                    int
	}{
		{"site: a lead's page", "GET", site + "/leads/" + id, opsUser, 404},
		{"site: a re-run", "POST", site + "/leads/" + id + "/rerun", opsUser, 404},
		{"ops: the page without credentials", "GET", ops + "/", "", 401},
		{"ops: a lead's page without credentials", "GET", ops + "/leads/" + id, "", 401},
		{"ops: a re-run without credentials", "POST", ops + "/leads/" + id + "/rerun", "", 401},
		{"ops: the page", "GET", ops + "/", opsUser, 200},
		{"ops: an unknown lead", "GET", ops + "/leads/" + id, opsUser, 404},
		{"ops: a re-run without the CSRF token", "POST", ops + "/leads/" + id + "/rerun", opsUser, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := status(t, tc.method, tc.url, tc.user, opsPass); got != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.url, got, tc.want)
			}
		})
	}

	resp := opsGet(t, site+"/")
	if body := readBody(t, resp); strings.Contains(body, "Dead leads") {
		t.Errorf("the site listener's / serves the ops page:\n%s", body)
	}
	resp = opsGet(t, ops+"/")
	body := readBody(t, resp)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(body, "Dead leads") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "http") {
		t.Errorf("ops page: CSP %q, body:\n%s", csp, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "leadrelay_csrf" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the page set no strict CSRF cookie: %v", resp.Cookies())
	}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"another token", strings.Repeat("A", 43), http.StatusForbidden},
		{"the page's token", cookie.Value, http.StatusSeeOther},
	} {
		req, _ := http.NewRequest(http.MethodPost, ops+"/leads/"+id+"/rerun", strings.NewReader(url.Values{"csrf": {tc.token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(opsUser, opsPass)
		req.AddCookie(cookie)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || tc.want == http.StatusSeeOther && !strings.Contains(resp.Header.Get("Location"), "rerun=gone") {
			t.Errorf("re-run with %s = %d (to %q), want %d", tc.name, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}
}

// runIntakeWithOps is runIntake with env and the ops credentials opsUser
// and opsPass.
func runIntakeWithOps(t *testing.T, env map[string]string) (site, ops string) {
	t.Helper()
	all := map[string]string{"LEADRELAY_UI_USER": opsUser, "LEADRELAY_UI_PASSWORD": opsPass}
	for k, v := range env {
		all[k] = v
	}
	return runIntake(t, all)
}

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// opsGet is a GET with the ops credentials.
func opsGet(t *testing.T, u string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.SetBasicAuth(opsUser, opsPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// readBody reads and closes resp's body (at most 1 MiB).
func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
