package intake

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadrelay/lead"
	"leadrelay/producer"
)

const shopSecret = "shop-secret-for-hmac-0123456789abcdef"

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

func signedPost(body string, ts int64, sig string) *http.Request {
	r := jsonPost(body, shopKey)
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	r.Header.Set(HeaderSignature, sig)
	return r
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(e *env, o *Options) {
		o.Secrets = map[string]string{"shop": shopSecret, "nobody": "x"}
		o.Replays = NewRedisReplays(e.rdb)
	})
	now := time.Now().Unix()
	body := `{"title":"Ann"}`
	good := Sign(shopSecret, now, http.MethodPost, "/v1/leads", "", []byte(body))
	dropBody := "login=shop&apikey=" + url.QueryEscape(shopKey) + "&action=add&title=Bob"
	signedDrop := func(query string) *http.Request {
		r := dropPost(dropBody)
		r.URL.RawQuery = query
		r.Header.Set(HeaderTimestamp, strconv.FormatInt(now, 10))
		r.Header.Set(HeaderSignature, Sign(shopSecret, now, http.MethodPost, "/developer/v1/leads", "", []byte(dropBody)))
		return r
	}
	const (
		idA = "/v1/leads/ld_000000000000000000000000"
		idB = "/v1/leads/ld_111111111111111111111111"
	)
	signedRead := func(path string, ts int64, sig string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+shopKey)
		r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		r.Header.Set(HeaderSignature, sig)
		return r
	}
	tests := []struct {
		name   string
		req    *http.Request
		status int
		inBody string
	}{
		{"unsigned", jsonPost(body, shopKey), 401, "signs its requests"},
		{"signed", signedPost(body, now, good), 202, ""},
		{"replayed", signedPost(body, now, good), 409, "used before"},
		{"another site needs no signature", jsonPost(body, blogKey), 202, ""},
		{"stale", signedPost(`{"title":"Bob"}`, now-360, Sign(shopSecret, now-360, http.MethodPost, "/v1/leads", "", []byte(`{"title":"Bob"}`))), 401, "5 minutes"},
		{"from the future", signedPost(`{"title":"Bob"}`, now+360, Sign(shopSecret, now+360, http.MethodPost, "/v1/leads", "", []byte(`{"title":"Bob"}`))), 401, "5 minutes"}, // a minute past the window: the test may take seconds on a loaded machine
		{"tampered body", signedPost(`{"title":"Bob"}`, now, good), 401, "does not match"},
		{"other secret", signedPost(`{"title":"Bob"}`, now, Sign("guess", now, http.MethodPost, "/v1/leads", "", []byte(`{"title":"Bob"}`))), 401, "does not match"},
		{"no prefix", signedPost(body, now, strings.TrimPrefix(good, "sha256=")), 401, "sha256="},
		{"short", signedPost(body, now, good[:20]), 401, "sha256="},
		{"signed timestamp text differs", func() *http.Request {
			r := signedPost(body, now, good)
			r.Header.Set(HeaderTimestamp, "0"+strconv.FormatInt(now, 10))
			return r
		}(), 401, "does not match"},
		{"negative timestamp", func() *http.Request {
			r := signedPost(body, now, good)
			r.Header.Set(HeaderTimestamp, "-1")
			return r
		}(), 401, "Unix seconds"},
		{"two signatures", func() *http.Request {
			r := signedPost(body, now, good)
			r.Header.Add(HeaderSignature, good)
			return r
		}(), 401, "one"},
		{"status signed", signedRead(idA, now, Sign(shopSecret, now, http.MethodGet, idA, "", nil)), 404, ""},
		// Low finding: a status signature covered only the timestamp, so one
		// pair read any id, any number of times.
		{"status signature of another id", signedRead(idB, now, Sign(shopSecret, now, http.MethodGet, idA, "", nil)), 401, "does not match"},
		{"status replayed", signedRead(idA, now, Sign(shopSecret, now, http.MethodGet, idA, "", nil)), 409, "used before"},
		{"status signed for POST", signedRead(idB, now, Sign(shopSecret, now, http.MethodPost, idB, "", nil)), 401, "does not match"},
		{"status signed for HEAD, sent as GET", signedRead(idB, now, Sign(shopSecret, now, http.MethodHead, idB, "", nil)), 401, "does not match"},
		{"status unsigned", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/v1/leads/ld_000000000000000000000000", nil)
			r.Header.Set("Authorization", "Bearer "+shopKey)
			return r
		}(), 401, "signs"},
		{"drop-in GET", dropGet(dropBody), 401, "POST"},
		{"drop-in lead field in the query", signedDrop("title=Mallory"), 401, "query"},
		{"drop-in unsigned", dropPost(dropBody), 401, "signs"},
		{"drop-in signed", signedDrop("login=shop&action=add"), 200, "Success"},
		{"drop-in replayed", signedDrop(""), 409, "used before"},
	}
	for _, tc := range tests {
		rec := e.do(t, tc.req)
		if apiStatus(rec) != tc.status || !strings.Contains(rec.Body.String(), tc.inBody) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, apiStatus(rec), rec.Body, tc.status, tc.inBody)
		}
	}
	if got := e.queueSize(t); got != 3 {
		t.Errorf("tasks = %d, want 3", got)
	}
}

// flakyPublisher fails while down is set.
type flakyPublisher struct {
	Publisher
	down bool
}

func (p *flakyPublisher) Publish(ctx context.Context, site string, l lead.Lead, key string) (producer.Receipt, error) {
	if p.down {
		return producer.Receipt{}, fmt.Errorf("%w: %w", producer.ErrUnavailable, producer.ErrNotStored)
	}
	return p.Publisher.Publish(ctx, site, l, key)
}

// TestSignatureRetryAfterFailure: a signed request the lead store refused
// before storing anything can be sent again exactly as signed.
func TestSignatureRetryAfterFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pub := &flakyPublisher{Publisher: producer.New(e.rdb, producer.Options{Queue: "leads"}, nil), down: true}
	h := New(Options{Sites: map[string]string{"shop": shopKey}, Secrets: map[string]string{"shop": shopSecret}, Replays: NewRedisReplays(e.rdb)}, pub, nil)
	now := time.Now().Unix()
	body := `{"title":"Ann"}`
	send := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, signedPost(body, now, Sign(shopSecret, now, http.MethodPost, "/v1/leads", "", []byte(body))))
		return rec.Code
	}
	if got := send(); got != http.StatusServiceUnavailable {
		t.Fatalf("store down: %d", got)
	}
	pub.down = false
	if got := send(); got != http.StatusAccepted {
		t.Fatalf("retry: %d", got)
	}
	if got := send(); got != http.StatusConflict {
		t.Fatalf("replay: %d", got)
	}
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	body := []byte("a=1")
	req := func(ts, sig string) signedRequest {
		h := http.Header{}
		if ts != "" {
			h.Set(HeaderTimestamp, ts)
		}
		if sig != "" {
			h.Set(HeaderSignature, sig)
		}
		return signedRequest{method: http.MethodPost, path: "/developer/v1/leads", hd: h, body: body}
	}
	sign := func(ts int64) string { return Sign("s", ts, http.MethodPost, "/developer/v1/leads", "", body) }
	withKey := func(q signedRequest, keys ...string) signedRequest {
		for _, k := range keys {
			q.hd.Add("Idempotency-Key", k)
		}
		return q
	}
	for _, tc := range []struct {
		name string
		q    signedRequest
		ok   bool
	}{
		{"good", req("1900000000", sign(1_900_000_000)), true},
		{"edge of the window", req("1899999700", sign(1_899_999_700)), true},
		{"upper-case hex", req("1900000000", "sha256="+strings.ToUpper(strings.TrimPrefix(sign(1_900_000_000), "sha256="))), true},
		{"no timestamp", req("", sign(1_900_000_000)), false},
		{"no signature", req("1900000000", ""), false},
		{"plus sign", req("+1900000000", sign(1_900_000_000)), false},
		{"huge", req("99999999999999999999", sign(1_900_000_000)), false},
		{"sha1", req("1900000000", "sha1="+strings.Repeat("0", 40)), false},
		{"a key it was not signed with", withKey(req("1900000000", sign(1_900_000_000)), "k1"), false},
		{"the key it was signed with", withKey(req("1900000000", Sign("s", 1_900_000_000, http.MethodPost, "/developer/v1/leads", "k1", body)), "k1"), true},
		{"two keys", withKey(req("1900000000", Sign("s", 1_900_000_000, http.MethodPost, "/developer/v1/leads", "k1", body)), "k1", "k1"), false},
		{"the old scheme", req("1900000000", legacySig("s", 1_900_000_000, string(body))), false},
	} {
		if got := verifySignature("s", tc.q, now); (got == "") != tc.ok {
			t.Errorf("%s: %q", tc.name, got)
		}
	}
}

// TestSignMatchesTheDocs: Sign computes the canonical string the README
// documents (canonicalSig spells it out).
func TestSignMatchesTheDocs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ method, path, key, body string }{
		{"POST", "/v1/leads", "order-7", `{"title":"Ann"}`},
		{"POST", "/developer/v1/leads", "", "login=shop&title=Ann"},
		{"GET", "/v1/leads/ld_000000000000000000000000", "", ""},
	} {
		if got, want := Sign(shopSecret, 1_900_000_000, tc.method, tc.path, tc.key, []byte(tc.body)), canonicalSig(shopSecret, tc.method, tc.path, tc.key, 1_900_000_000, tc.body); got != want {
			t.Errorf("Sign(%s %s) = %s, want %s", tc.method, tc.path, got, want)
		}
	}
}

func FuzzVerifySignature(f *testing.F) {
	now := time.Unix(1_900_000_000, 0)
	body := `{"title":"Ann","email":"ann@example.com","utm_source":"google"}`
	f.Add(shopSecret, "1900000000", Sign(shopSecret, 1_900_000_000, "POST", "/v1/leads", "k", []byte(body)), "k", []byte(body))
	f.Add("s", "1900000000", "sha256=", "", []byte(seedQuery))
	f.Add("", "", "", "", []byte(nil))
	f.Add("s", "-0", "sha256=zz", "\n", []byte("x"))
	f.Add("s", "1900000000\r\n", "SHA256="+strings.Repeat("a", 64), "", []byte("\xff"))
	f.Fuzz(func(t *testing.T, secret, ts, sig, key string, body []byte) {
		q := signedRequest{method: http.MethodPost, path: "/v1/leads", hd: http.Header{}, body: body}
		q.hd.Set(HeaderTimestamp, ts)
		q.hd.Set(HeaderSignature, sig)
		if key != "" {
			q.hd.Set("Idempotency-Key", key)
		}
		if verifySignature(secret, q, now) == "" {
			// Whatever passes is the MAC of the request with the timestamp as sent, in the window.
			sec, err := strconv.ParseInt(ts, 10, 64)
			d := now.Sub(time.Unix(sec, 0))
			want := "sha256=" + hex.EncodeToString(mac(secret, q.method, q.path, q.hd.Get("Idempotency-Key"), ts, body))
			if err != nil || !strings.EqualFold(sig, want) || d > SignatureWindow || d < -SignatureWindow {
				t.Fatalf("accepted ts %q sig %q", ts, sig)
			}
		}
		// What Sign makes passes whenever its timestamp is in the window
		// (and its key is one a header can carry).
		printable := !strings.ContainsFunc(q.hd.Get("Idempotency-Key"), func(r rune) bool { return r < 0x20 || r == 0x7f })
		if sec, err := strconv.ParseInt(ts, 10, 64); err == nil && sec >= 0 && printable {
			q.hd.Set(HeaderTimestamp, strconv.FormatInt(sec, 10))
			q.hd.Set(HeaderSignature, Sign(secret, sec, q.method, q.path, q.hd.Get("Idempotency-Key"), body))
			d := now.Sub(time.Unix(sec, 0))
			if ok := verifySignature(secret, q, now) == ""; ok != (d <= SignatureWindow && d >= -SignatureWindow) {
				t.Fatalf("own signature at %d: accepted %v", sec, ok)
			}
		}
	})
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
