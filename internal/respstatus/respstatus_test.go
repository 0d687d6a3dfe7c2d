package respstatus

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRecorder: the first status written is the one recorded, a body
// without a status records 200, and Code is 200 for a handler that wrote
// nothing, while Status stays 0.
func TestRecorder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		handler    func(w http.ResponseWriter)
		status     int
		code       int
		clientCode int
	}{
		{"nothing", func(http.ResponseWriter) {}, 0, http.StatusOK, http.StatusOK},
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("ok")) }, http.StatusOK, http.StatusOK, http.StatusOK},
		{"status", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot) }, http.StatusTeapot, http.StatusTeapot, http.StatusTeapot},
		{"status then body", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("no"))
		}, http.StatusNotFound, http.StatusNotFound, http.StatusNotFound},
		{"two statuses", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
			w.WriteHeader(http.StatusOK) // ignored by net/http too
		}, http.StatusBadGateway, http.StatusBadGateway, http.StatusBadGateway},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			sw := &Recorder{ResponseWriter: rec}
			tc.handler(sw)
			if sw.Status != tc.status || sw.Code() != tc.code || rec.Code != tc.clientCode {
				t.Errorf("Status, Code(), client's = %d, %d, %d; want %d, %d, %d",
					sw.Status, sw.Code(), rec.Code, tc.status, tc.code, tc.clientCode)
			}
		})
	}
}

// TestRecorderUnwrap: http.ResponseController reaches the writer
// underneath, so a handler can still flush through the recorder.
func TestRecorderUnwrap(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	if err := http.NewResponseController(&Recorder{ResponseWriter: rec}).Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if !rec.Flushed {
		t.Error("the recorder underneath was not flushed")
	}
}
