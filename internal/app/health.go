package app

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// Check reports one dependency's readiness: nil when ready, otherwise an
// error whose text tells an operator what is wrong. It must not leak secrets.
type Check func(ctx context.Context) error

// Note reports a state worth showing in /readyz that does not make the
// process unready, such as an open CRM circuit (the CRM is down, this
// process is fine and postpones deliveries). "" means nothing to report.
type Note func(ctx context.Context) string

// healthHandler serves /healthz (the process is alive) and /readyz (every
// check passes). The ops listener's /readyz (ready) lists each check's
// state in a JSON body, notes with ok true and their text in info; the
// site listener's (readyPublic) says only ready or not ready, since the
// reasons name addresses and settings.
type healthHandler struct {
	checks map[string]Check
	notes  map[string]Note
}

func (h *healthHandler) live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

func (h *healthHandler) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	names := make([]string, 0, len(h.checks)+len(h.notes))
	for n := range h.checks {
		names = append(names, n)
	}
	for n := range h.notes {
		if h.checks[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	type result struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Reason string `json:"reason,omitempty"`
		Info   string `json:"info,omitempty"`
	}
	body := struct {
		Status string   `json:"status"`
		Checks []result `json:"checks"`
	}{Status: "ready"}
	code := http.StatusOK
	for _, n := range names {
		res := result{Name: n, OK: true}
		if check := h.checks[n]; check != nil {
			if err := check(ctx); err != nil {
				res.OK, res.Reason = false, err.Error()
				body.Status, code = "not ready", http.StatusServiceUnavailable
			}
		} else {
			res.Info = h.notes[n](ctx)
		}
		body.Checks = append(body.Checks, res)
	}
	writeJSON(w, code, body)
}

// readyPublic is /readyz for the site listener: 200 {"status":"ready"} or
// 503 {"status":"not ready"}, and nothing of why.
func (h *healthHandler) readyPublic(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	for _, check := range h.checks {
		if check(ctx) != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// circuitNote shows the shared CRM circuit breaker in /readyz. An open
// circuit means the CRM is failing, not this worker: it is informational.
func circuitNote(state func(context.Context) (bool, time.Duration, error)) Note {
	return func(ctx context.Context) string {
		open, wait, err := state(ctx)
		switch {
		case err != nil:
			return "circuit state unknown: " + err.Error()
		case open:
			return "open: the CRM failed repeatedly; deliveries are postponed without spending attempts, next probe in " +
				wait.Round(time.Second).String()
		}
		return "closed"
	}
}
