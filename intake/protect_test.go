package intake

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(_ *env, o *Options) {
		o.Origins = map[string][]string{"shop": {"https://shop.example"}, "blog": {"https://blog.example"}}
	})
	preflight := func(origin, path string) *http.Request {
		r := httptest.NewRequest(http.MethodOptions, path, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		return r
	}
	withOrigin := func(r *http.Request, origin string) *http.Request {
		r.Header.Set("Origin", origin)
		return r
	}
	t.Run("preflight", func(t *testing.T) {
		rec := e.do(t, preflight("https://Shop.example", "/v1/leads"))
		want := map[string]string{
			"Access-Control-Allow-Origin":  "https://Shop.example",
			"Access-Control-Allow-Methods": "POST",
			"Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, X-LeadRelay-Signature, X-LeadRelay-Timestamp",
			"Access-Control-Max-Age":       "600",
			"Vary":                         "Origin",
		}
		if rec.Code != http.StatusNoContent {
			t.Fatalf("status %d", rec.Code)
		}
		for k, v := range want {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		for _, r := range []*http.Request{preflight("https://evil.example", "/v1/leads"), preflight("null", "/v1/leads"), preflight("https://shop.example", "/v1/leads/ld_1")} {
			rec := e.do(t, r)
			if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Header().Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("%s %s: %d %v", r.Header.Get("Origin"), r.URL.Path, rec.Code, rec.Header())
			}
		}
		if rec := e.do(t, httptest.NewRequest(http.MethodOptions, "/v1/leads", nil)); rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("OPTIONS without Origin: %d", rec.Code)
		}
	})
	tests := []struct {
		name   string
		req    *http.Request
		status int
		acao   string
	}{
		{"listed origin", withOrigin(jsonPost(`{"title":"Ann"}`, shopKey), "https://shop.example"), 202, "https://shop.example"},
		{"another site's origin", withOrigin(jsonPost(`{"title":"Bob"}`, shopKey), "https://blog.example"), 403, "https://blog.example"},
		{"unlisted origin", withOrigin(jsonPost(`{"title":"Cid"}`, shopKey), "https://evil.example"), 403, ""},
		{"site without a list", withOrigin(jsonPost(`{"title":"Dan"}`, seedKey), "https://evil.example"), 202, ""},
		{"server to server", jsonPost(`{"title":"Eve"}`, shopKey), 202, ""},
		{"status from an unlisted origin", func() *http.Request {
			r := withOrigin(httptest.NewRequest(http.MethodGet, "/v1/leads/ld_000000000000000000000000", nil), "https://evil.example")
			r.Header.Set("Authorization", "Bearer "+shopKey)
			return r
		}(), 403, ""},
		{"drop-in from an unlisted origin", withOrigin(dropPost("login=shop&apikey="+url.QueryEscape(shopKey)+"&action=add&title=Fay"), "https://evil.example"), 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, tc.req)
			if apiStatus(rec) != tc.status || rec.Header().Get("Access-Control-Allow-Origin") != tc.acao || rec.Header().Get("Vary") != "Origin" {
				t.Errorf("%d ACAO %q Vary %q: %s", apiStatus(rec), rec.Header().Get("Access-Control-Allow-Origin"), rec.Header().Get("Vary"), rec.Body)
			}
			if tc.status == 403 && !strings.Contains(rec.Body.String(), "origin") {
				t.Errorf("403 answer: %s", rec.Body)
			}
		})
	}
	if got := e.queueSize(t); got != 3 {
		t.Errorf("tasks = %d, want 3", got)
	}
}

func TestSpamHint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	shop := "login=shop&apikey=" + url.QueryEscape(shopKey) + "&action=add"
	tests := []struct {
		name        string
		req         *http.Request
		description string // what was enqueued, before the site line; "" = refused
	}{
		{"JSON", jsonPost(`{"title":"Ann","description":"Call me","spam_hint":"  filled\r\nhoneypot "}`, shopKey),
			"Call me\n[spam hint: filled  honeypot]"},
		{"JSON without description", jsonPost(`{"title":"Bob","spam_hint":"x"}`, shopKey), "[spam hint: x]"},
		{"JSON empty hint", jsonPost(`{"title":"Cid","description":"d","spam_hint":""}`, shopKey), "d"},
		{"JSON hint too long", jsonPost(`{"title":"Dan","spam_hint":"`+strings.Repeat("я", 256)+`"}`, shopKey), ""},
		{"JSON hint not a string", jsonPost(`{"title":"Dan","spam_hint":true}`, shopKey), ""},
		{"drop-in honeypots", dropGet(shop + "&title=Eve&description=Hi&website=http%3A%2F%2Fspam.example&hp=1&honeypot=&spam_hint=bot"),
			"Hi\n[spam hint: bot; hp=1; website=http://spam.example]"},
		{"drop-in long hint cut", dropPost(shop + "&title=Fay&hp=" + strings.Repeat("a", 300)),
			"[spam hint: hp=" + strings.Repeat("a", MaxSpamHint-1) + "…]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.queueSize(t)
			rec := e.do(t, tc.req)
			id := acceptedID(t, rec)
			if tc.description == "" {
				if id != "" || e.queueSize(t) != before || !strings.Contains(rec.Body.String(), "spam_hint") {
					t.Errorf("accepted: %d %s", rec.Code, rec.Body)
				}
				return
			}
			if id == "" {
				t.Fatalf("refused: %d %s", rec.Code, rec.Body)
			}
			if got, want := e.enqueued(t, id).Description, tc.description+"\nSite: shop"; got != want {
				t.Errorf("description = %q; want %q", got, want)
			}
		})
	}
}

// TestOpsNotExposed: the intake handler, mounted alone, serves no ops page,
// simulator or CRM read action to sites.
func TestOpsNotExposed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, p := range []string{"/ui", "/ui/", "/ui/api/queues", "/_sim/leads", "/metrics", "/ops/dead", "/developer/v1/leads/stat", "/v1/ui/"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = p
		req.Header.Set("Authorization", "Bearer "+shopKey)
		if rec := e.do(t, req); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
}
