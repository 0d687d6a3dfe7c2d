// Package opspage is LeadRelay's page for operators, at / of the ops
// listener beside asynqmon (/ui/): it speaks in sites and leads, not
// tasks. It shows each site's queued, retrying, dead and delivered-today
// leads and its last delivery, the CRM's health (circuit, configuration
// problem and its fix, the fleet's adaptive concurrency limit and
// goodput), the dead leads with their reason and a re-run button, and a
// search by e-mail or phone that opens a lead's timeline.
//
// It is server-rendered html/template without JavaScript and loads
// nothing from elsewhere (its Content-Security-Policy forbids it).
// Contacts are masked as asynqmon's payload formatter masks them
// (lead.MaskName, MaskEmail, MaskPhone). Its one action, the re-run, is a
// form POST that carries a CSRF token (a double-submit cookie) and goes
// through deadletter.Store.Requeue, as /ops/dead and `ctl dead requeue`
// do. It checks no credentials itself: it is served behind the ops
// listener's guard (internal/app.OpsGuard).
//
//	h := opspage.New(rc, deadStore, codec, opspage.Options{Queue: "leads"})
//	mux.Handle("GET /{$}", h)
//	mux.Handle("/leads/", h)
package opspage

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/deadletter"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
	"leadrelay/status"
)

// DefaultSearchLimit is how many tasks (and dead leads) a search reads
// when Options.SearchLimit is zero: a search opens every payload it
// reads, which at LeadRelay's scale (hundreds of leads a day, kept
// LEADRELAY_DEDUP_TTL) is all of them.
const DefaultSearchLimit = 20_000

// DefaultDeadShown is how many of the newest dead leads the page lists
// when Options.DeadShown is zero.
const DefaultDeadShown = 50

// Options configure the page. The zero value reads lead.DefaultQueue and
// lists no site until it has data.
type Options struct {
	// Queue is the asynq queue the relay's leads travel on.
	Queue string
	// Sites are the configured sites, listed even before they have data.
	Sites []string
	// ReadOnly hides the re-run button and refuses re-runs
	// (LEADRELAY_UI_READONLY).
	ReadOnly bool
	// SearchLimit bounds a search: at most this many tasks and dead leads
	// are read; zero means DefaultSearchLimit. The page says the bound.
	SearchLimit int
	// DeadShown is how many dead leads are listed; zero means
	// DefaultDeadShown.
	DeadShown int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log logs what the page could not read; nil logs nothing.
	Log *zap.Logger
}

// Page serves the page. Build it with New; it is safe for concurrent use.
type Page struct {
	o      Options
	rc     redis.UniversalClient
	store  *rdb.Store
	dead   *deadletter.Store
	status *status.Reader
	// envelopes reads tasks without keys: counting by site needs only their
	// envelopes, and opens no lead's fields.
	envelopes *status.Reader
	codec     lead.Codec
	mux       *http.ServeMux
}

// New returns the page on rc, re-running dead leads through dead and
// opening payloads with codec.
func New(rc redis.UniversalClient, dead *deadletter.Store, codec lead.Codec, o Options) *Page {
	o.Queue = cmp.Or(o.Queue, lead.DefaultQueue)
	o.SearchLimit = cmp.Or(max(o.SearchLimit, 0), DefaultSearchLimit)
	o.DeadShown = cmp.Or(max(o.DeadShown, 0), DefaultDeadShown)
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Log = cmp.Or(o.Log, zap.NewNop())
	p := &Page{o: o, rc: rc, store: rdb.New(rc), dead: dead, status: status.New(rc, o.Queue).Opening(codec),
		envelopes: status.New(rc, o.Queue), codec: codec, mux: http.NewServeMux()}
	p.mux.HandleFunc("GET /{$}", p.overview)
	p.mux.HandleFunc("GET /leads/{id}", p.lead)
	p.mux.HandleFunc("POST /leads/{id}/rerun", p.rerun)
	return p
}

// ServeHTTP serves the overview at /, a lead at /leads/{id} and its
// re-run at POST /leads/{id}/rerun.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Cache-Control", "no-store")
	p.mux.ServeHTTP(w, r)
}

//go:embed page.html page.css
var files embed.FS

var (
	tmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
		"stamp": stamp, "ago": ago, "css": func() template.CSS { return template.CSS(css) },
	}).ParseFS(files, "page.html"))
	css = must(files.ReadFile("page.css"))
	// csp allows the page's own stylesheet (by its hash) and forms to
	// itself, and nothing else: no script, no image, no font, no
	// connection, from anywhere.
	csp = "default-src 'none'; style-src 'sha256-" + hashOf(css) + "'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'"
)

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func hashOf(b []byte) string {
	h := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(h[:])
}

// csrfCookie holds the page's CSRF token; every form sends it back as
// csrfField. A page on another origin can neither read the cookie nor
// (SameSite=Strict) have it sent.
const (
	csrfCookie = "leadrelay_csrf"
	csrfField  = "csrf"
)

// errCSRF is the re-run's answer to a form without the page's token.
var errCSRF = errors.New("the form lacks this page's CSRF token: reload the page and try again")

// token is the request's CSRF token, set in a new cookie when it has
// none.
func token(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return v
}

// checkCSRF holds a POST to the token of its cookie.
func checkCSRF(r *http.Request) error {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return errCSRF
	}
	got := r.PostFormValue(csrfField)
	if subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) != 1 {
		return errCSRF
	}
	return nil
}

// render writes template name with data, or a plain 500.
func (p *Page) render(w http.ResponseWriter, name string, code int, data any) {
	var b strings.Builder
	if err := tmpl.ExecuteTemplate(&b, name, data); err != nil {
		p.o.Log.Error("ops page: render", zap.String("template", name), zap.Error(err))
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// stamp shows a time in UTC to the second; the zero time as "-".
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// ago shows how long ago t was, coarsely; the zero time as "never".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	switch d := now.Sub(t); {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return stamp(t)
}
