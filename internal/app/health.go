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

// healthHandler serves /healthz (the process is alive) and /readyz (every
// check passes), the latter with each check's state in a JSON body.
type healthHandler struct {
	checks map[string]Check
}

func (h *healthHandler) live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

func (h *healthHandler) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	names := make([]string, 0, len(h.checks))
	for n := range h.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	type result struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Reason string `json:"reason,omitempty"`
	}
	body := struct {
		Status string   `json:"status"`
		Checks []result `json:"checks"`
	}{Status: "ready"}
	code := http.StatusOK
	for _, n := range names {
		res := result{Name: n, OK: true}
		if err := h.checks[n](ctx); err != nil {
			res.OK, res.Reason = false, err.Error()
			body.Status, code = "not ready", http.StatusServiceUnavailable
		}
		body.Checks = append(body.Checks, res)
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
