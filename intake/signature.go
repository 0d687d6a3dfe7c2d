package intake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/internal/rdb"
)

// Headers of a signed request.
const (
	// HeaderTimestamp carries the time of signing, in Unix seconds.
	HeaderTimestamp = "X-LeadRelay-Timestamp"
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256, keyed with
	// the site's secret, of the request's canonical string (see Sign).
	HeaderSignature = "X-LeadRelay-Signature"
	// headerIdempotencyKey is the header whose value a signature covers.
	headerIdempotencyKey = "Idempotency-Key"
)

// SignatureWindow is how far a signed request's timestamp may be from
// intake's clock, either way. Replays are remembered for twice as long, so
// that a timestamp from the window's future edge is still covered.
const SignatureWindow = 5 * time.Minute

const signaturePrefix = "sha256="

// MinSecretLen is the shortest site secret: 32 bytes, the HMAC-SHA256 key
// size (config refuses shorter ones).
const MinSecretLen = 32

// Sign returns the X-LeadRelay-Signature value of a request signed at ts
// with secret: what a sender computes. The MAC covers the canonical string
//
//	METHOD "\n" path "\n" idempotency-key "\n" timestamp "\n" body
//
// with the method in upper case (POST), the path as sent, without the
// query (/v1/leads), the Idempotency-Key header's value or "" without one,
// the X-LeadRelay-Timestamp value, and the raw body ("" for a status read).
// None of the first four can hold a newline, so the string has one reading:
// a signature is good for that method, path and key only.
func Sign(secret string, ts int64, method, path, key string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, method, path, key, strconv.FormatInt(ts, 10), body))
}

func mac(secret, method, path, key, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	for _, part := range []string{method, path, key, ts} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	m.Write(body)
	return m.Sum(nil)
}

// legacyMAC is the MAC of the scheme before the canonical string: the
// timestamp, ".", and the body (a status read's "METHOD path" in place of
// it). Intake accepts it no more, since any Idempotency-Key or path could be
// sent with it; it only recognizes it, to tell the sender what changed.
func legacyMAC(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// signedRequest is what a request's signature covers, besides its headers.
type signedRequest struct {
	method, path string
	hd           http.Header
	body         []byte
}

func signedPartsOf(r *http.Request, body []byte) signedRequest {
	return signedRequest{method: r.Method, path: r.URL.EscapedPath(), hd: r.Header, body: body}
}

// verifySignature checks a signed request at now, and returns "" or what
// is wrong, fit to show the sender. The MAC covers the timestamp exactly
// as sent.
func verifySignature(secret string, q signedRequest, now time.Time) string {
	tss, sigs := q.hd.Values(HeaderTimestamp), q.hd.Values(HeaderSignature)
	if len(tss) != 1 || len(sigs) != 1 {
		return "this site signs its requests: send one " + HeaderTimestamp + " and one " + HeaderSignature + " header"
	}
	ts, sig := tss[0], sigs[0]
	if len(ts) == 0 || len(ts) > 12 || strings.Trim(ts, "0123456789") != "" {
		return HeaderTimestamp + " must be Unix seconds"
	}
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if d := now.Sub(time.Unix(sec, 0)); d > SignatureWindow || d < -SignatureWindow {
		return HeaderTimestamp + " is more than 5 minutes off; sign each request when it is sent, and check the sender's clock"
	}
	hexSig, ok := strings.CutPrefix(sig, signaturePrefix)
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(got) != sha256.Size {
		return HeaderSignature + " must be sha256=<64 hex digits>"
	}
	keys := q.hd.Values(headerIdempotencyKey)
	if len(keys) > 1 {
		return "send one " + headerIdempotencyKey + " header, not several"
	}
	key := strings.Join(keys, "")
	if strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return headerIdempotencyKey + " may hold only printable characters"
	}
	if hmac.Equal(got, mac(secret, q.method, q.path, key, ts, q.body)) {
		return ""
	}
	legacy := q.body
	if len(legacy) == 0 {
		legacy = []byte(q.method + " " + q.path)
	}
	if hmac.Equal(got, legacyMAC(secret, ts, legacy)) {
		return HeaderSignature + " signs only the timestamp and the body, which is no longer accepted: sign METHOD\\npath\\nidempotency-key\\ntimestamp\\nbody (see the README, Signatures)"
	}
	return HeaderSignature + " does not match the request (method, path, " + headerIdempotencyKey + ", timestamp and body)"
}

// Replays remembers the signatures of accepted requests, so that a captured
// signed request cannot be sent again within the window. *RedisReplays
// implements it; a nil Replays in Options remembers nothing, and only the
// timestamp window limits replays.
type Replays interface {
	// First records the signature sig of site for ttl and reports whether
	// it was new. An error means it could not tell; intake then goes on.
	First(ctx context.Context, site, sig string, ttl time.Duration) (bool, error)
	// Forget drops sig again, so that a request that was not accepted (the
	// lead store failed) can be retried as it was signed.
	Forget(ctx context.Context, site, sig string) error
}

// RedisReplays keeps signatures in Redis, shared by every intake process,
// each under its own key with a TTL. Use NewRedisReplays.
type RedisReplays struct {
	store *rdb.Store
}

// NewRedisReplays returns Replays kept in rc.
func NewRedisReplays(rc redis.UniversalClient) *RedisReplays {
	return &RedisReplays{store: rdb.New(rc)}
}

// sigMAC is the MAC of a signature header, as the store keeps it.
func sigMAC(sig string) string { return strings.TrimPrefix(sig, signaturePrefix) }

// First implements Replays with SET NX.
func (s *RedisReplays) First(ctx context.Context, site, sig string, ttl time.Duration) (bool, error) {
	ok, err := s.store.SignatureFirst(ctx, site, sigMAC(sig), ttl)
	if err != nil {
		return false, fmt.Errorf("intake replay memory: %w", err)
	}
	return ok, nil
}

// Forget implements Replays.
func (s *RedisReplays) Forget(ctx context.Context, site, sig string) error {
	return s.store.SignatureForget(ctx, site, sigMAC(sig))
}

// signed checks the signature of a request of site when the site has a
// secret. When it is missing or wrong, signed answers 401 in the surface's
// shape and returns false.
func (h *handler) signed(w http.ResponseWriter, r *http.Request, site string, body []byte, answer answerFunc) bool {
	secret, ok := h.sites(r).secrets[site]
	if !ok {
		return true
	}
	if problem := verifySignature(secret, signedPartsOf(r, body), h.now()); problem != "" {
		note(r, "", "", "bad_signature")
		answer(w, http.StatusUnauthorized, problem)
		return false
	}
	return true
}

// firstUse remembers the signature of a signed request of site and refuses
// one seen before with 409. On success it returns the function that forgets
// the signature again, for when nothing of the request was stored after all
// (producer.NothingStored): the sender may then send it again as signed.
func (h *handler) firstUse(w http.ResponseWriter, r *http.Request, site string, answer answerFunc) (func(), bool) {
	none := func() {}
	if _, ok := h.sites(r).secrets[site]; !ok || h.replays == nil {
		return none, true
	}
	sig := r.Header.Get(HeaderSignature)
	first, err := h.replays.First(r.Context(), site, sig, 2*SignatureWindow)
	switch {
	case err != nil:
		// Fail open, as the limiter does: the publish needs the same Redis.
		h.log.Warn("intake replay memory failed; request admitted", zap.Error(err))
		return none, true
	case !first:
		note(r, "", "", "replay")
		answer(w, http.StatusConflict, "this signature was used before; sign every request afresh")
		return none, false
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
		defer cancel()
		if err := h.replays.Forget(ctx, site, sig); err != nil {
			h.log.Warn("intake replay memory: forget failed", zap.Error(err))
		}
	}, true
}

// signedDropIn checks a drop-in request of a site with a secret. Only a POST
// body can be signed, so such a site must POST, and its query may carry
// nothing but login, apikey and action: an unsigned lead field in the query
// could be changed by whoever replays the body.
func (h *handler) signedDropIn(w http.ResponseWriter, r *http.Request, site string, body []byte) bool {
	if _, ok := h.sites(r).secrets[site]; !ok {
		return true
	}
	if r.Method != http.MethodPost {
		note(r, "", "", "bad_signature")
		answerCRM(w, http.StatusUnauthorized, "this site signs its requests: send them as a POST with "+HeaderSignature)
		return false
	}
	for name := range phpParseQuery(r.URL.RawQuery) {
		if name != paramLogin && name != paramAPIKey && name != paramAction {
			note(r, "", "", "bad_signature")
			answerCRM(w, http.StatusUnauthorized, "this site signs its requests: send the lead's fields in the signed POST body, not the query")
			return false
		}
	}
	return h.signed(w, r, site, body, answerCRM)
}
