package intake

import "net/http"

// answerFunc writes a problem in one surface's shape: the JSON API's error
// object or the CRM's add failure.
type answerFunc func(w http.ResponseWriter, status int, problem string)

func answerJSON(w http.ResponseWriter, status int, problem string) {
	writeJSON(w, status, errorBody{Error: problem})
}

func answerCRM(w http.ResponseWriter, status int, problem string) {
	writeCRM(w, status, addFailure(problem))
}

// throttledAuthFailure counts a failed authentication against the client's
// address. When the client has failed too often it answers 429 and returns
// true; otherwise the caller gives its own answer (401, or the CRM's).
func (h *handler) throttledAuthFailure(w http.ResponseWriter, r *http.Request, answer answerFunc) bool {
	return h.limited(w, r, "", answer)
}

// admitSite runs the checks that need the authenticated site, cheapest
// first: the site's origin allow-list (403), then the rate limits (429).
// False means it has answered.
func (h *handler) admitSite(w http.ResponseWriter, r *http.Request, site string, answer answerFunc) bool {
	if h.sites(r).cors.forbidden(site, r.Header.Get("Origin")) {
		note(r, "", "", "forbidden_origin")
		answer(w, http.StatusForbidden, "this site does not accept requests from this origin")
		return false
	}
	return !h.limited(w, r, site, answer)
}
