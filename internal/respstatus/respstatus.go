// Package respstatus records the status an HTTP handler answered with, for
// the places that log or audit a request after its handler ran: intake's
// request log and traces, the ops guard's audit line, and the CRM
// simulator's request log.
//
//	sw := &respstatus.Recorder{ResponseWriter: w}
//	next.ServeHTTP(sw, r)
//	log.Info("request", zap.Int("status", sw.Code()))
package respstatus

import "net/http"

// Recorder is a ResponseWriter that remembers the status its handler
// wrote. Its zero value is not usable: ResponseWriter must be set.
type Recorder struct {
	http.ResponseWriter
	// Status is the status written; 0 while nothing has been.
	Status int
}

// WriteHeader records code (the first one) and writes it.
func (w *Recorder) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records 200 when no status came first, and writes b.
func (w *Recorder) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath (to flush,
// hijack or set deadlines).
func (w *Recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Code is the status the client got: 200 when the handler wrote nothing.
func (w *Recorder) Code() int {
	if w.Status == 0 {
		return http.StatusOK
	}
	return w.Status
}
