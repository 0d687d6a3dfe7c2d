package intake

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/respstatus"
)

// middleware wraps a handler. CORS runs here, before routing, to answer
// preflights; the origin allow-list, rate limits and signature checks need
// the site, so each surface runs them after authentication (admitSite,
// signed, firstUse).
type middleware func(http.Handler) http.Handler

// chain applies mws so that the last one is the outermost.
func chain(h http.Handler, mws ...middleware) http.Handler {
	for _, mw := range mws {
		h = mw(h)
	}
	return h
}

// reqLog is what a handler learned about a request, for its log line, and
// the sites as the request found them (Directory).
type reqLog struct {
	site, leadID, outcome string
	sites                 *siteSet
}

type reqLogKey struct{}

// note records the site, lead id and outcome of a request for the log line.
// Empty values leave what was noted before.
func note(r *http.Request, site, leadID, outcome string) {
	rl, _ := r.Context().Value(reqLogKey{}).(*reqLog)
	if rl == nil {
		return
	}
	if site != "" {
		rl.site = site
	}
	if leadID != "" {
		rl.leadID = leadID
	}
	if outcome != "" {
		rl.outcome = outcome
	}
}

// logRequests writes one line per request: method, path, status, site,
// lead_id, outcome, duration. Never the query (the drop-in endpoint carries
// the key there), headers or body.
func logRequests(log *zap.Logger) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rl := &reqLog{}
			sw := &respstatus.Recorder{ResponseWriter: w}
			next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), reqLogKey{}, rl)))
			lvl := zap.InfoLevel
			if sw.Status >= 500 {
				lvl = zap.WarnLevel
			}
			log.Log(lvl, "intake request",
				zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Int("status", sw.Status), zap.String("site", rl.site),
				zap.String("lead_id", rl.leadID), zap.String("outcome", rl.outcome),
				zap.Duration("duration", time.Since(start)))
		})
	}
}

// recoverPanics turns a panic into a 500; the log line names no request data.
func recoverPanics(log *zap.Logger) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("intake handler panicked", zap.Any("panic", v), zap.Stack("stack"))
					note(r, "", "", "panic")
					writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
