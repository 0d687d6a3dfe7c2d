package app

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// uiPath is where the ops UI (asynqmon) is mounted.
const uiPath = "/ui"

// UIHandler returns asynqmon guarded for operators: basic auth when user and
// password are set, otherwise loopback clients only.
func UIHandler(conn asynq.RedisConnOpt, user, password string, readOnly bool) http.Handler {
	mon := asynqmon.New(asynqmon.Options{
		RootPath:     uiPath,
		RedisConnOpt: conn,
		ReadOnly:     readOnly,
	})
	return guard(mon, user, password)
}

// guard admits an operator: with credentials, by basic auth compared in
// constant time; without, only clients on loopback.
func guard(h http.Handler, user, password string) http.Handler {
	if user == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !fromLoopback(r) {
				http.Error(w, "the ops UI is served to loopback clients only; set LEADRELAY_UI_USER and LEADRELAY_UI_PASSWORD to open it", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	wantU, wantP := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotU, gotP := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotU[:], wantU[:])
		passOK := subtle.ConstantTimeCompare(gotP[:], wantP[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="leadrelay ops", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
