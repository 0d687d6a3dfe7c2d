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
		if resp, err := srv.Client().Get(srv.URL + "/developer/v2/lead"); err == nil {
			resp.Body.Close()
		}
	}
	c.outage.mu.Lock()
	defer c.outage.mu.Unlock()
	if c.outage.inflight != 0 || c.outage.peak != 1 {
		t.Fatalf("after 3 aborted requests, one at a time: %d in flight, peak %d; want 0 and 1", c.outage.inflight, c.outage.peak)
	}
}

// TestCRMSelfCallsUncounted: the real CRM's v2 add calls its own
// developer/webhooks.php, at the Host its request came to, and waits for
// it; behind the bench's proxy that self-call comes through the proxy. It
// is no request of LeadRelay's: it is forwarded but neither counted nor
// gauged. The gauge counted it, and the real-CRM drain reported up to 19
// requests in flight while the fleet's limit was 10 and its adds held
// exactly the limit's slots.
func TestCRMSelfCallsUncounted(t *testing.T) {
	t.Parallel()
	c := &crm{}
	c.expect(0, false)
	var srv *httptest.Server
	php := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/developer/v2/lead" {
			return // webhooks.php
		}
		resp, err := srv.Client().Get(srv.URL + "/developer/webhooks.php")
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})
	srv = httptest.NewServer(c.wrap(php))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Post(srv.URL+"/developer/v2/lead", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n, peak := c.count(), c.peakInflight(); n != 1 || peak != 1 {
		t.Fatalf("one add with its self-call: %d requests counted, peak %d in flight; want 1 and 1", n, peak)
	}
}
