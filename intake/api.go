package intake

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"leadrelay/delivery"
	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/status"
)

// MaxIdempotencyKey is the longest Idempotency-Key header intake accepts.
const MaxIdempotencyKey = 200

type acceptedBody struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

type statusBody struct {
	ID            string    `json:"id"`
	Status        string    `json:"status"`
	CRMID         int64     `json:"crm_id,omitempty"`
	Attempts      int       `json:"attempts,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	ReceivedAt    time.Time `json:"received_at,omitzero"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
	Timeline      []siteRun `json:"timeline,omitempty"`
}

// siteRun is one run of a site's lead as the site reads it: when, how it
// ended and the reason's code and site text. Nothing internal: no worker,
// no CRM codes or words, no durations.
type siteRun struct {
	At         time.Time     `json:"at"`
	Outcome    string        `json:"outcome"`
	ReasonCode delivery.Code `json:"reason_code,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	Repeats    int           `json:"repeats,omitempty"`
	LastAt     time.Time     `json:"last_at,omitzero"`
}

// siteTimeline is a lead's timeline as its site reads it.
func siteTimeline(runs []delivery.Run) []siteRun {
	out := make([]siteRun, 0, len(runs))
	for _, r := range runs {
		out = append(out, siteRun{At: r.At, Outcome: string(r.End), ReasonCode: r.Reason.Code,
			Reason: r.Reason.Text(delivery.Sites), Repeats: r.Repeats, LastAt: r.LastAt})
	}
	return out
}

// postFromSite admits a POST of the JSON API from a known site within its
// request limits, and names the site; otherwise it has answered why not.
// It says whether the site's key was a publishable one.
func (h *handler) postFromSite(w http.ResponseWriter, r *http.Request) (site string, publishable, ok bool) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "POST")
		return "", false, false
	}
	site, publishable, ok = h.bearer(w, r)
	if !ok || !h.admitSite(w, r, site, answerJSON) {
		return "", false, false
	}
	return site, publishable, true
}

// secretOnly answers 403 to a publishable key on a route that tells about
// earlier leads (a status, a batch's duplicates), and says whether it did.
func secretOnly(w http.ResponseWriter, r *http.Request, publishable bool, what string) bool {
	if !publishable {
		return false
	}
	note(r, "", "", "forbidden")
	writeJSON(w, http.StatusForbidden, errorBody{Error: "a publishable key only submits leads; " + what +
		" needs the site's secret key, from its server (see the sites file's keys and publishable_keys)"})
	return true
}

// jsonContent says whether the request's body is JSON, or answers 415.
func jsonContent(w http.ResponseWriter, r *http.Request) bool {
	if !isJSON(r.Header.Get("Content-Type")) {
		note(r, "", "", "unsupported_media_type")
		writeJSON(w, http.StatusUnsupportedMediaType, errorBody{Error: "Content-Type must be application/json"})
		return false
	}
	return true
}

// leads serves POST /v1/leads.
func (h *handler) leads(w http.ResponseWriter, r *http.Request) {
	site, publishable, ok := h.postFromSite(w, r)
	if !ok {
		return
	}
	key, problem := idempotencyKey(r.Header)
	if problem != "" {
		note(r, "", "", "bad_request")
		writeJSON(w, http.StatusBadRequest, errorBody{Error: problem})
		return
	}
	if !jsonContent(w, r) {
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		h.bodyError(w, r, err)
		return
	}
	if !h.signed(w, r, site, body, answerJSON) {
		return
	}
	l, err := decodeJSON(body)
	if err != nil {
		h.invalid(w, r, err)
		return
	}
	if !h.roomFor(w, r, site, 1, answerJSON) {
		return
	}
	forget, ok := h.firstUse(w, r, site, answerJSON)
	if !ok {
		return
	}
	rc, err := h.pub.Publish(r.Context(), site, l, key)
	if err != nil {
		if producer.NothingStored(err) {
			forget()
		}
		h.publishError(w, r, err)
		return
	}
	// A keyless repeat is answered as a new lead, from a browser or not
	// (a page's key is public, and curl sends no Origin): nobody learns
	// that the same content was sent before (issue 18). The repeat is
	// counted for operators (producer, keyless window). So is every
	// repeat sent with a publishable key.
	if !rc.Duplicate || key == "" || publishable {
		note(r, "", rc.ID, "accepted")
		w.Header().Set("Location", "/v1/leads/"+rc.ID)
		writeJSON(w, http.StatusAccepted, acceptedBody{ID: rc.ID, Status: string(delivery.Queued)})
		return
	}
	note(r, "", rc.ID, "duplicate")
	state := delivery.Queued
	if st, err := h.pub.Status(r.Context(), site, rc.ID); err == nil {
		state = st.State
	}
	writeJSON(w, http.StatusOK, acceptedBody{ID: rc.ID, Status: string(state), Duplicate: true})
}

// leadStatus serves GET /v1/leads/{id}.
func (h *handler) leadStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	site, publishable, ok := h.bearer(w, r)
	if !ok || secretOnly(w, r, publishable, "reading a lead's status") ||
		!h.admitSite(w, r, site, answerJSON) || !h.signed(w, r, site, nil, answerJSON) {
		return
	}
	if _, ok := h.firstUse(w, r, site, answerJSON); !ok {
		return
	}
	id := r.PathValue("id")
	st, err := h.pub.Status(r.Context(), site, id)
	switch {
	case errors.Is(err, status.ErrNotFound):
		note(r, "", "", "not_found")
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such lead"})
	case errors.Is(err, status.ErrUnavailable):
		h.unavailable(w, r, err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "lead store unavailable, try again later"})
	case err != nil:
		h.internal(w, r, err)
	default:
		note(r, "", st.ID, "found")
		writeJSON(w, http.StatusOK, statusBody{
			ID: st.ID, Status: string(st.State), CRMID: st.CRMID, Attempts: st.Attempts, LastError: st.Reason.Text(delivery.Sites),
			ReceivedAt: st.ReceivedAt, UpdatedAt: st.UpdatedAt, NextAttemptAt: st.NextAttemptAt, DeliveredAt: st.DeliveredAt,
			Timeline: siteTimeline(st.Runs),
		})
	}
}

// bearer authenticates the site by its key, or answers 401, or 429 when the
// client has failed too often. It says whether the key is publishable.
func (h *handler) bearer(w http.ResponseWriter, r *http.Request) (site string, publishable, ok bool) {
	scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		if h.throttledAuthFailure(w, r, answerJSON) {
			return "", false, false
		}
		note(r, "", "", "unauthorized")
		w.Header().Set("WWW-Authenticate", `Bearer realm="leadrelay"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing site key: send Authorization: Bearer <site key>"})
		return "", false, false
	}
	site, publishable, ok = h.sites(r).keys.lookup(strings.TrimSpace(key))
	if !ok {
		if h.throttledAuthFailure(w, r, answerJSON) {
			return "", false, false
		}
		note(r, "", "", "unauthorized")
		w.Header().Set("WWW-Authenticate", `Bearer realm="leadrelay", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unknown site key"})
		return "", false, false
	}
	note(r, site, "", "")
	return site, publishable, true
}

// reservedKeyText refuses a key in the relay's namespace of keyless leads
// (lead.ReservedKey): with it a site could aim at another lead's identity.
const reservedKeyText = `Idempotency-Key may not start with "` + lead.KeylessPrefix + `" or "` + lead.LegacyKeylessPrefix +
	`": those prefixes name leads sent without a key; send a key of your own (an order number, a UUID) or none`

// idempotencyKey returns the Idempotency-Key header, or a problem with it.
func idempotencyKey(hd http.Header) (string, string) {
	vs := hd.Values("Idempotency-Key")
	switch {
	case len(vs) == 0:
		return "", ""
	case len(vs) > 1:
		return "", "send one Idempotency-Key header, not several"
	case len(vs[0]) > MaxIdempotencyKey:
		return "", "Idempotency-Key is longer than 200 characters"
	}
	for i := 0; i < len(vs[0]); i++ {
		if c := vs[0][i]; c < 0x20 || c > 0x7e {
			return "", "Idempotency-Key may hold only printable ASCII"
		}
	}
	if lead.ReservedKey(vs[0]) {
		return "", reservedKeyText
	}
	return vs[0], ""
}

func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

func (h *handler) bodyError(w http.ResponseWriter, r *http.Request, err error) {
	if isTooLarge(err) {
		note(r, "", "", "too_large")
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "body is larger than 64 KiB"})
		return
	}
	note(r, "", "", "bad_request")
	writeJSON(w, http.StatusBadRequest, errorBody{Error: "could not read the body"})
}

// invalid answers 400 naming every bad field.
func (h *handler) invalid(w http.ResponseWriter, r *http.Request, err error) {
	note(r, "", "", "invalid")
	var de *DecodeError
	var ve *lead.ValidationError
	switch {
	case errors.As(err, &de):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: de.Problem, Fields: de.Fields})
	case errors.As(err, &ve):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid lead", Fields: capFields(ve.Fields)})
	default:
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid request"})
	}
}

func (h *handler) publishError(w http.ResponseWriter, r *http.Request, err error) {
	var ve *lead.ValidationError
	switch {
	case errors.As(err, &ve):
		h.invalid(w, r, err)
	case h.backlogFull(w, r, err, answerJSON):
	case errors.Is(err, producer.ErrReservedKey):
		note(r, "", "", "bad_request")
		writeJSON(w, http.StatusBadRequest, errorBody{Error: reservedKeyText})
	case errors.Is(err, producer.ErrKeyReused):
		// As the IETF Idempotency-Key draft and Stripe answer a key reused
		// for another request: 422, naming the key; nothing was stored.
		note(r, "", "", "key_reused")
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: keyReusedText(r.Header.Get("Idempotency-Key"))})
	case errors.Is(err, producer.ErrUnavailable):
		h.unavailable(w, r, err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "lead store unavailable, the lead was not accepted; try again later"})
	default:
		h.internal(w, r, err)
	}
}

// keyReusedText is the answer to an idempotency key reused with another
// lead.
func keyReusedText(key string) string {
	if key == "" {
		return "this lead's idempotency key was already used for a different lead; send a new key for a new lead"
	}
	return fmt.Sprintf("Idempotency-Key %q was already used for a different lead; send a new key for a new lead", key)
}

// unavailable logs a Redis outage and sets Retry-After; the caller writes
// the answer in its surface's shape.
func (h *handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	note(r, "", "", "unavailable")
	h.log.Warn("lead store unavailable", zap.Error(err))
	w.Header().Set("Retry-After", h.retryAfter)
}

func (h *handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	note(r, "", "", "error")
	h.log.Error("intake failed", zap.Error(err))
	writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	note(r, "", "", "method_not_allowed")
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed; use " + allow})
}
