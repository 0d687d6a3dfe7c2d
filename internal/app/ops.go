package app

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"leadrelay/deadletter"
)

// deadPath serves LeadRelay's own dead-letter store to operators, next to
// asynqmon: asynq's archive is trimmed at 10,000 tasks and 90 days, this
// store is not. It sits behind the same guard as the UI.
const deadPath = "/ops/dead"

// deadHandler lists dead leads (GET /ops/dead?site=&since=24h&limit=&offset=),
// shows one (GET /ops/dead/{id}) and hands leads back to the queue
// (POST /ops/dead/{id}/requeue) unless the UI is read-only.
func deadHandler(store *deadletter.Store, readOnly bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+deadPath, func(w http.ResponseWriter, r *http.Request) {
		f, err := deadFilter(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		recs, total, err := store.List(r.Context(), f)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "dead-letter store unavailable"})
			return
		}
		if recs == nil {
			recs = []deadletter.Record{} // [] for none, never null
		}
		writeJSON(w, http.StatusOK, map[string]any{"total": total, "leads": recs})
	})
	mux.HandleFunc("GET "+deadPath+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, err := store.Get(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, deadletter.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no dead lead with that id"})
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "dead-letter store unavailable"})
		default:
			writeJSON(w, http.StatusOK, rec)
		}
	})
	mux.HandleFunc("POST "+deadPath+"/{id}/requeue", func(w http.ResponseWriter, r *http.Request) {
		if readOnly {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the ops UI is read-only (LEADRELAY_UI_READONLY)"})
			return
		}
		res, err := store.Requeue(r.Context(), []string{r.PathValue("id")}, nil)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "requeue failed: " + err.Error()})
			return
		}
		code := http.StatusOK
		if len(res.NotFound) > 0 {
			code = http.StatusNotFound
		}
		writeJSON(w, code, res)
	})
	return mux
}

// deadParams are the query parameters of GET /ops/dead; paging is limit
// (default 100, at most 1000) and offset.
var deadParams = []string{"site", "since", "limit", "offset"}

func deadFilter(r *http.Request) (deadletter.Filter, error) {
	q := r.URL.Query()
	for name := range q {
		if !slices.Contains(deadParams, name) {
			return deadletter.Filter{}, fmt.Errorf("unknown parameter %s: GET /ops/dead takes site, since (a duration such as 24h), limit (at most 1000) and offset", name)
		}
	}
	f := deadletter.Filter{Site: q.Get("site"), Limit: 100}
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return f, errors.New("since must be a duration such as 24h")
		}
		f.Since = time.Now().Add(-d)
	}
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (name == "limit" && n > 1000) {
				return f, errors.New(name + " must be a whole number (limit at most 1000)")
			}
			*dst = n
		}
	}
	return f, nil
}
