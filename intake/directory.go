package intake

import (
	"context"
	"net/http"
	"sync/atomic"

	"go.uber.org/zap"
)

// Site is one site as intake serves it. The zero value is a site with no
// key, which no request can name.
type Site struct {
	// Keys are the site's secret keys: one, or two while a key is rotated
	// (both are accepted). They submit leads and read their status: keep
	// them on the site's server. Empty keys are ignored.
	Keys []string
	// PublishableKeys are the site's publishable keys (one, or two while
	// one is rotated), for a page in a browser, where every visitor can
	// read them: they submit leads (JSON API, drop-in) and learn nothing
	// of earlier ones. A repeat is answered as a new lead, a status read
	// or a batch gets 403. Empty keys are ignored.
	PublishableKeys []string
	// Origins are the browser origins (scheme://host[:port]) allowed to
	// send the site's leads (CORS); see Options.Origins.
	Origins []string
	// Secret, when set, makes the site sign every request (see
	// HeaderSignature).
	Secret string
	// Settings are how the drop-in reads the site's forms and how its
	// leads name it in the CRM.
	Settings SiteSettings
	// RateLimit, when set, is the site's own limit in requests per second
	// (0: none), in place of the limiter's per-site rate; see
	// WithSiteRates.
	RateLimit *float64
}

// Directory holds the sites intake serves and lets the whole set be
// replaced while it serves (a reload of the sites file): each request
// reads the set once, when it comes in, so it sees the old sites or the
// new ones, never a mix. Safe for concurrent use; build one with
// NewDirectory.
type Directory struct {
	cur atomic.Pointer[siteSet]
	log *zap.Logger
}

// siteSet is one generation of the sites, as the handler reads them.
type siteSet struct {
	keys    keyring
	cors    corsPolicy
	secrets map[string]string
	forms   map[string]siteForm
	rates   map[string]float64
}

// NewDirectory returns a Directory serving sites (by name). A nil log
// discards its warnings.
func NewDirectory(sites map[string]Site, log *zap.Logger) *Directory {
	if log == nil {
		log = zap.NewNop()
	}
	d := &Directory{log: log}
	d.Replace(sites)
	return d
}

// Replace makes sites the set every request from now on is served with.
// Requests already in flight finish with the set they started with.
func (d *Directory) Replace(sites map[string]Site) {
	keys, public := map[string][]string{}, map[string][]string{}
	origins := map[string][]string{}
	settings := map[string]SiteSettings{}
	set := &siteSet{secrets: map[string]string{}, rates: map[string]float64{}}
	for name, s := range sites {
		if name == "" {
			continue
		}
		keys[name], public[name], origins[name], settings[name] = s.Keys, s.PublishableKeys, s.Origins, s.Settings
		if s.Secret != "" {
			set.secrets[name] = s.Secret
		}
		if s.RateLimit != nil {
			set.rates[name] = *s.RateLimit
		}
	}
	set.keys = newKeyring(keys, public, d.log)
	set.cors = newCORS(origins)
	set.forms = newSiteForms(settings, d.log)
	d.cur.Store(set)
}

// SiteRate is the site's own rate limit, when it has one: the function a
// limiter built WithSiteRates asks.
func (d *Directory) SiteRate(site string) (float64, bool) {
	r, ok := d.cur.Load().rates[site]
	return r, ok
}

// directoryOf builds the Directory of Options that have none, from their
// Sites, Origins, Secrets and SiteSettings.
func directoryOf(o Options, log *zap.Logger) *Directory {
	if o.Directory != nil {
		return o.Directory
	}
	sites := map[string]Site{}
	for name, key := range o.Sites {
		if key != "" {
			sites[name] = Site{Keys: []string{key}, Origins: o.Origins[name], Secret: o.Secrets[name], Settings: o.SiteSettings[name]}
		}
	}
	return NewDirectory(sites, log)
}

// snapshotSites makes every request read the sites once, when it comes
// in: the set is kept with the request's log record, which the requests'
// handlers and the publisher reach through the context.
func (h *handler) snapshotSites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rl, _ := r.Context().Value(reqLogKey{}).(*reqLog); rl != nil {
			rl.sites = h.dir.cur.Load()
		}
		next.ServeHTTP(w, r)
	})
}

// sites returns the sites as the request found them.
func (h *handler) sites(r *http.Request) *siteSet { return h.dir.sitesOf(r.Context()) }

// sitesOf returns the sites as the request of ctx found them, or the
// current ones outside a request.
func (d *Directory) sitesOf(ctx context.Context) *siteSet {
	if rl, _ := ctx.Value(reqLogKey{}).(*reqLog); rl != nil && rl.sites != nil {
		return rl.sites
	}
	return d.cur.Load()
}
