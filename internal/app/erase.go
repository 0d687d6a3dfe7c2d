package app

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"leadrelay/erasure"
)

// erasePath erases a person's leads on request, as `ctl lead erase` does,
// behind the ops guard (credentials, the cross-origin check, the Host
// check; the guard's audit line names the operator, the eraser's the
// lead ids and counts).
const erasePath = "/ops/erase"

// eraseRequest is the body of POST /ops/erase: lead ids, an e-mail or a
// phone (any of them; a lead holding the e-mail or the phone is erased).
type eraseRequest struct {
	IDs   []string `json:"ids"`
	Email string   `json:"email"`
	Phone string   `json:"phone"`
}

// eraseHandler answers POST /ops/erase with erasure.Report: 200 when
// everything found was erased, 404 when nothing was found, 409 when a
// lead's delivery kept running (erase again), 400 for a body that names no
// lead, 403 on a read-only UI, 503 when Redis failed midway.
func eraseHandler(e *erasure.Eraser, readOnly bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST a JSON body {\"ids\":[…],\"email\":…,\"phone\":…}"})
			return
		}
		if readOnly {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the ops UI is read-only (LEADRELAY_UI_READONLY)"})
			return
		}
		var req eraseRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want a JSON body {\"ids\":[…],\"email\":…,\"phone\":…}"})
			return
		}
		rep, err := e.Erase(r.Context(), erasure.Query{IDs: req.IDs, Email: req.Email, Phone: req.Phone, By: "ops"})
		switch {
		case errors.Is(err, erasure.ErrQuery):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "erasure incomplete: Redis failed; erase again", "report": rep})
		case rep.Unreached > 0:
			writeJSON(w, http.StatusConflict, rep)
		case len(rep.Leads) == 0:
			writeJSON(w, http.StatusNotFound, rep)
		default:
			writeJSON(w, http.StatusOK, rep)
		}
	})
}
