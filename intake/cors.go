package intake

import (
	"net/http"
	"strings"
)

// CORS answers for browser forms.
const (
	corsAllowMethods  = "POST"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, X-LeadRelay-Signature, X-LeadRelay-Timestamp"
	corsExposeHeaders = "Location, Retry-After"
	corsMaxAge        = "600"
)

// corsPolicy holds the browser origins each site allows. Origins compare
// without regard to case, as hosts do.
type corsPolicy struct {
	bySite map[string]map[string]bool
	any    map[string]bool
}

func newCORS(origins map[string][]string) corsPolicy {
	c := corsPolicy{bySite: map[string]map[string]bool{}, any: map[string]bool{}}
	for site, list := range origins {
		for _, o := range list {
			o = strings.ToLower(strings.TrimSuffix(o, "/"))
			if o == "" || o == "*" || o == "null" {
				continue
			}
			if c.bySite[site] == nil {
				c.bySite[site] = map[string]bool{}
			}
			c.bySite[site][o] = true
			c.any[o] = true
		}
	}
	return c
}

// forbidden reports whether a request of site from origin must be refused:
// it comes from a browser (it has an Origin) and the site has an allow-list
// without that origin. A site without a list takes any origin, and requests
// without Origin (server to server) are not concerned.
func (c corsPolicy) forbidden(site, origin string) bool {
	list := c.bySite[site]
	return origin != "" && len(list) > 0 && !list[strings.ToLower(origin)]
}

// corsMiddleware answers preflights of POST /v1/leads and marks answers to
// allowed origins readable, by the policy of the request's sites. An
// origin no site allows gets no CORS header at all, so the browser keeps
// the answer from the page. It never answers "*": the origin is echoed
// only when it is on a list.
func (h *handler) corsMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := h.sites(r).cors
		hd := w.Header()
		hd.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		allowed := origin != "" && c.any[strings.ToLower(origin)]
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			note(r, "", "", "preflight")
			if allowed && r.URL.Path == "/v1/leads" {
				hd.Set("Access-Control-Allow-Origin", origin)
				hd.Set("Access-Control-Allow-Methods", corsAllowMethods)
				hd.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				hd.Set("Access-Control-Max-Age", corsMaxAge)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}
