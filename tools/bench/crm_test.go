package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestInflightGaugeAfterAbort: a request whose handler aborts (a
// ReverseProxy whose client went away mid-answer panics with
// http.ErrAbortHandler) leaves the CRM gauge, as a completed one does.
// The gauge counted such requests in flight for the rest of the run.
func TestInflightGaugeAfterAbort(t *testing.T) {
	t.Parallel()
	c := &crm{}
	c.expect(0, false)
	abort := c.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	srv := httptest.NewServer(abort)
	t.Cleanup(srv.Close)
	for range 3 {
		if resp, err := srv.Client().Get(srv.URL); err == nil {
			resp.Body.Close()
		}
	}
	c.outage.mu.Lock()
	defer c.outage.mu.Unlock()
	if c.outage.inflight != 0 || c.outage.peak != 1 {
		t.Fatalf("after 3 aborted requests, one at a time: %d in flight, peak %d; want 0 and 1", c.outage.inflight, c.outage.peak)
	}
}
