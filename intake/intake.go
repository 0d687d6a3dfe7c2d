package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/status"
)

// Publisher is what intake needs from the producer; *producer.Publisher
// implements it.
type Publisher interface {
	// Publish validates and enqueues a lead; see producer.Publisher.Publish.
	Publish(ctx context.Context, site string, l lead.Lead, idempotencyKey string) (producer.Receipt, error)
	// Status reports where a site's lead is: package status's answer, with
	// its errors (status.ErrNotFound, status.ErrUnavailable).
	Status(ctx context.Context, site, id string) (status.Status, error)
}

// DefaultRetryAfter is the Retry-After intake sends with a 503.
const DefaultRetryAfter = 5 * time.Second

// Options configures the intake handler. The zero value knows no site and so
// answers every lead with 401.
type Options struct {
	// Sites maps each site's name to its key. Sites with an empty name or
	// key are ignored.
	Sites map[string]string
	// Origins maps a site to the browser origins (scheme://host[:port])
	// allowed to send its leads (CORS). A request with an Origin header for
	// a site with a list must come from an origin on it, or gets 403. Sites
	// without a list take requests from any origin, but browsers only read
	// the answers of origins that some site lists. Nil: no CORS.
	Origins map[string][]string
	// Secrets maps a site to its HMAC secret. Requests of those sites must
	// be signed (see HeaderSignature). Nil: no site signs.
	Secrets map[string]string
	// Limiter applies rate limits after authentication, and to failed
	// authentications per client address. Nil: no limits. The application
	// passes NewRedisLimiter.
	Limiter Limiter
	// Replays remembers signatures so that a signed request is accepted
	// once. Nil: only the timestamp window limits replays. The application
	// passes NewRedisReplays.
	Replays Replays
	// RetryAfter is sent with 503 answers. Zero means DefaultRetryAfter.
	RetryAfter time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the
	// client. Empty: the connection's address is the client, and
	// forwarded headers are ignored (any client can write them).
	TrustedProxies []netip.Prefix
	// LeadBudget limits the leads a site hands in through POST
	// /v1/leads/batch, which counts once against Limiter. Nil: no budget.
	// The application passes NewRedisLeadBudget.
	LeadBudget LeadBudget
	// Observer, when set, is told every request's site and outcome and
	// every enqueue's duration, for metrics. Nil observes nothing.
	Observer Observer
	// Capacity bounds the backlog of undelivered leads and guards Redis's
	// memory. The zero value bounds nothing.
	Capacity Capacity
	// SiteSettings holds, per site, how its drop-in forms are read and how
	// its leads name it in the CRM. A site without an entry, or nil, gets
	// the defaults (SiteSettings' zero value).
	SiteSettings map[string]SiteSettings
	// Directory, when set, holds the sites in place of Sites, Origins,
	// Secrets and SiteSettings, and can replace them while intake serves
	// (a reload of the sites file).
	Directory *Directory
	// Tracer, when set, traces every request (and, through the context,
	// the publish of its leads): package tracing. Nil traces nothing and
	// costs nothing.
	Tracer trace.Tracer
	// OpsUI is the operators' page as GET / names it to a visitor, e.g.
	// http://127.0.0.1:8081/ (the ops listener as it listens). Empty: GET /
	// names the ops listener by its setting only.
	OpsUI string
}

type handler struct {
	pub        Publisher
	log        *zap.Logger
	dir        *Directory
	limiter    Limiter
	budget     LeadBudget
	capacity   Capacity
	memory     *memoryGuard
	capLog     everyMinute
	proxies    []netip.Prefix
	replays    Replays
	now        func() time.Time
	retryAfter string
	unmapped   *unmappedLog
	obs        Observer // nil observes nothing
}

// New returns the intake handler: the JSON API, the SalesMan drop-in
// endpoint, CORS, request logging and panic recovery, with the protections
// Options turn on. A nil log discards logs.
func New(o Options, pub Publisher, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	dir := directoryOf(o, log)
	h := &handler{
		pub:        attributed(observed(pub, o.Observer), dir),
		log:        log,
		dir:        dir,
		limiter:    o.Limiter,
		budget:     o.LeadBudget,
		capacity:   o.Capacity,
		memory:     newMemoryGuard(o.Capacity),
		proxies:    o.TrustedProxies,
		replays:    o.Replays,
		now:        time.Now,
		retryAfter: strconv.Itoa(int((o.RetryAfter + time.Second - 1) / time.Second)),
		unmapped:   newUnmappedLog(log),
		obs:        o.Observer,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/leads", h.leads)
	mux.HandleFunc("/v1/leads/{id}", h.leadStatus)
	mux.HandleFunc("/v1/leads/batch", h.leadsBatch)
	mux.HandleFunc("/developer/v1/leads", h.dropIn)
	mux.HandleFunc("/developer/v2/lead", h.dropInV2)
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /{$}", serveRoot(o.OpsUI))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		note(r, "", "", "not_found")
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not found: the API is described at /openapi.json"})
	})
	return chain(mux, h.corsMiddleware, h.snapshotSites, recoverPanics(log), observeRequests(o.Observer), traceRequests(o.Tracer), logRequests(log))
}

// readBody reads the whole body, at most lead.MaxPayloadBytes of it, before
// anything is enqueued.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > lead.MaxPayloadBytes {
		return nil, &http.MaxBytesError{Limit: lead.MaxPayloadBytes}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lead.MaxPayloadBytes))
	return b, err
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

type errorBody struct {
	Error  string            `json:"error"`
	Fields []lead.FieldError `json:"fields,omitempty"`
}

// writeJSON answers with v as JSON; API answers are never cached.
// Text is not HTML-escaped: <, > and & stay themselves.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// maxReported bounds the problems listed in one answer: a 64 KiB body can
// hold thousands of unknown fields.
const maxReported = 32

func capFields(fs []lead.FieldError) []lead.FieldError {
	if len(fs) <= maxReported {
		return fs
	}
	more := len(fs) - maxReported
	return append(fs[:maxReported:maxReported], lead.FieldError{Field: "", Problem: "and " + strconv.Itoa(more) + " more problems"})
}
