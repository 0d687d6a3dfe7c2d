package intake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"leadrelay/lead"
	"leadrelay/producer"
)

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

// signedLead is a POST /v1/leads of site shop with key (none when "").
func signedLead(body, key string, ts int64, sig string) *http.Request {
	r := signedPost(body, ts, sig)
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	return r
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
			if _, err := e.pub.Publish(context.Background(), "shop", lead.Lead{Title: "Ann"}, "k1"); err != nil {
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

// failingPublisher answers every Publish with err.
type failingPublisher struct {
	Publisher
	err error
}

func (p *failingPublisher) Publish(ctx context.Context, site string, l lead.Lead, key string) (producer.Receipt, error) {
	if p.err == nil {
		return p.Publisher.Publish(ctx, site, l, key)
	}
	return producer.Receipt{}, p.err
}

// TestSignatureForgottenOnlyWhenNothingStored is the rest of finding 7:
// intake forgot a signature after any failed publish, also one that may
// have stored the lead (an unconfirmed replica wait, an enqueue whose
// answer was lost), so the request could be replayed. The first case
// failed on main (the resend got 202). Now only a failure that stored
// nothing lets the same signed request in again.
func TestSignatureForgottenOnlyWhenNothingStored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		resend int
	}{
		{"maybe stored (replicas did not confirm)", fmt.Errorf("%w: lead ld_1: replicas did not confirm", producer.ErrUnavailable), http.StatusConflict},
		{"nothing stored (backlog full)", &producer.BacklogFullError{Site: "shop", Pending: 1, Cap: 1}, http.StatusAccepted},
		{"nothing stored (invalid)", &lead.ValidationError{}, http.StatusAccepted},
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
			if got := send(); got == http.StatusAccepted || got == http.StatusUnauthorized {
				t.Fatalf("first send: %d, want the publish failure", got)
			}
			pub.err = nil
			if got := send(); got != tc.resend {
				t.Errorf("the same signed request again: %d, want %d", got, tc.resend)
			}
		})
	}
}
