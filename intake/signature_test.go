package intake

import (
	"crypto/hmac"
	"crypto/sha256"
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

// canonicalSig is the documented signature (README, Signatures), written
// out here rather than through Sign: METHOD, path, Idempotency-Key,
// timestamp and body, joined by newlines.
func canonicalSig(secret, method, path, key string, ts int64, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%s\n%s\n%s\n%d\n%s", method, path, key, ts, body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// legacySig is the scheme before it: the timestamp, ".", and the body.
func legacySig(secret string, ts int64, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", ts, body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func signedPost(body string, ts int64, sig string) *http.Request {
	r := jsonPost(body, shopKey)
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	r.Header.Set(HeaderSignature, sig)
	return r
}

// signedLead is a POST /v1/leads of site shop with key (none when "").
func signedLead(body, key string, ts int64, sig string) *http.Request {
	r := signedPost(body, ts, sig)
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
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

// TestSignatureCoversTheRequest is finding 7 of issue 18: the signature
// covered only the timestamp and the body, so a captured request's
// timestamp and signature, sent again with another Idempotency-Key once
// the first was refused (its key named another lead: the signature was
// forgotten), got 202. Both subtests failed on main (202 for the old
// scheme). Now the MAC covers method, path, key, timestamp and body, and
// the old scheme is refused with a 401 that says what changed.
func TestSignatureCoversTheRequest(t *testing.T) {
	t.Parallel()
	const body = `{"title":"Bob","email":"bob@example.com"}`
	for _, tc := range []struct {
		name string
		sign func(key string, ts int64) string
		// first is the answer to the request with the reused key k1.
		first int
	}{
		{"the old scheme", func(_ string, ts int64) string { return legacySig(shopSecret, ts, body) }, http.StatusUnauthorized},
		{"the canonical string", func(key string, ts int64) string {
			return canonicalSig(shopSecret, http.MethodPost, "/v1/leads", key, ts, body)
		}, http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, nil, func(e *env, o *Options) {
				o.Secrets = map[string]string{"shop": shopSecret}
				o.Replays = NewRedisReplays(e.rdb)
			})
			if _, err := e.pub.Publish(t.Context(), "shop", lead.Lead{Title: "Ann"}, "k1"); err != nil {
				t.Fatal(err)
			}
			now := time.Now().Unix()
			sig := tc.sign("k1", now)
			if rec := e.do(t, signedLead(body, "k1", now, sig)); rec.Code != tc.first {
				t.Errorf("signed with k1, k1 taken: %d %s, want %d", rec.Code, rec.Body, tc.first)
			}
			rec := e.do(t, signedLead(body, "k2", now, sig))
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("the same timestamp and signature with key k2: %d %s, want 401", rec.Code, rec.Body)
			}
			if got := e.queueSize(t); got != 1 {
				t.Errorf("%d tasks, want only the first lead", got)
			}
		})
	}
}

// TestSignatureOldSchemeNamesTheChange: a sender still on the old scheme
// learns what to sign instead.
func TestSignatureOldSchemeNamesTheChange(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(e *env, o *Options) { o.Secrets = map[string]string{"shop": shopSecret} })
	now := time.Now().Unix()
	const body = `{"title":"Bob"}`
	rec := e.do(t, signedLead(body, "", now, legacySig(shopSecret, now, body)))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "no longer accepted") {
		t.Errorf("old scheme: %d %s, want 401 naming the change", rec.Code, rec.Body)
	}
	if rec := e.do(t, signedLead(body, "", now, canonicalSig(shopSecret, "POST", "/v1/leads", "", now, body))); rec.Code != http.StatusAccepted {
		t.Errorf("canonical string: %d %s, want 202", rec.Code, rec.Body)
	}
}

// TestSignatureForgottenOnlyWhenNothingStored is the rest of finding 7:
// intake forgot a signature after any failed publish, also one that may
// have stored the lead (an unconfirmed replica wait, an enqueue whose
// answer was lost), so the request could be replayed. The first case
// failed on main (the resend got 202). Now only a failure that stored
// nothing lets the same signed request in again, and only once.
func TestSignatureForgottenOnlyWhenNothingStored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		err           error
		first, resend int
	}{
		{"maybe stored (replicas did not confirm)", fmt.Errorf("%w: lead ld_1: replicas did not confirm", producer.ErrUnavailable), http.StatusServiceUnavailable, http.StatusConflict},
		// A signed request the lead store refused before storing anything
		// can be sent again exactly as signed.
		{"nothing stored (store down)", fmt.Errorf("%w: %w", producer.ErrUnavailable, producer.ErrNotStored), http.StatusServiceUnavailable, http.StatusAccepted},
		{"nothing stored (backlog full)", &producer.BacklogFullError{Site: "shop", Pending: 1, Cap: 1}, http.StatusTooManyRequests, http.StatusAccepted},
		{"nothing stored (invalid)", &lead.ValidationError{}, http.StatusBadRequest, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			pub := &failingPublisher{Publisher: e.pub, err: tc.err}
			h := New(Options{Sites: map[string]string{"shop": shopKey}, Secrets: map[string]string{"shop": shopSecret}, Replays: NewRedisReplays(e.rdb)}, pub, nil)
			now := time.Now().Unix()
			const body = `{"title":"Ann"}`
			send := func() int {
				req := signedPost(body, now, canonicalSig(shopSecret, "POST", "/v1/leads", "", now, body))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec.Code
			}
			if got := send(); got != tc.first {
				t.Fatalf("first send: %d, want the publish failure (%d)", got, tc.first)
			}
			pub.err = nil
			if got := send(); got != tc.resend {
				t.Fatalf("the same signed request again: %d, want %d", got, tc.resend)
			}
			if got := send(); got != http.StatusConflict {
				t.Errorf("a third time: %d, want 409 (replay)", got)
			}
		})
	}
}
