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
	// the site's secret, of the timestamp, ".", and the raw body.
	HeaderSignature = "X-LeadRelay-Signature"
)

// SignatureWindow is how far a signed request's timestamp may be from
// intake's clock, either way. Replays are remembered for twice as long, so
// that a timestamp from the window's future edge is still covered.
const SignatureWindow = 5 * time.Minute

const signaturePrefix = "sha256="

// Sign returns the X-LeadRelay-Signature value for body signed at ts with
// secret: what a sender computes.
func Sign(secret string, ts int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, strconv.FormatInt(ts, 10), body))
}

// SignRead returns the X-LeadRelay-Signature value for a status read (a
// request without a body) signed at ts: the MAC covers the method and the
// path, "GET /v1/leads/ld_…", in place of the body, so that a signature
// read one lead only, and only once.
func SignRead(secret string, ts int64, method, path string) string {
	return Sign(secret, ts, readMessage(method, path))
}

// readMessage is what a status read's signature covers.
func readMessage(method, path string) []byte { return []byte(method + " " + path) }

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// verifySignature checks a signed request's headers against body at now,
// and returns "" or what is wrong, fit to show the sender. The MAC covers
// the timestamp exactly as sent.
func verifySignature(secret string, hd http.Header, body []byte, now time.Time) string {
	tss, sigs := hd.Values(HeaderTimestamp), hd.Values(HeaderSignature)
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
	if !hmac.Equal(got, mac(secret, ts, body)) {
		return HeaderSignature + " does not match the body"
	}
	return ""
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
	secret, ok := h.secrets[site]
	if !ok {
		return true
	}
	if problem := verifySignature(secret, r.Header, body, h.now()); problem != "" {
		note(r, "", "", "bad_signature")
		answer(w, http.StatusUnauthorized, problem)
		return false
	}
	return true
}

// firstUse remembers the signature of a signed request of site and refuses
// one seen before with 409. On success it returns the function that forgets
// the signature again, for when the lead is not accepted after all.
func (h *handler) firstUse(w http.ResponseWriter, r *http.Request, site string, answer answerFunc) (func(), bool) {
	none := func() {}
	if _, ok := h.secrets[site]; !ok || h.replays == nil {
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
	if _, ok := h.secrets[site]; !ok {
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
