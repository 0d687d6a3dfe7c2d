package intake

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestPublishableKeys: a browser form's key is public, so a site may give
// its page a publishable key, which submits leads and learns nothing of
// earlier ones: a repeat is answered as a new lead, and a status read or
// a batch gets 403 saying which key to use. The site's secret key still
// reads the status. Before, any key of the site read any of its leads'
// status (issue 18).
func TestPublishableKeys(t *testing.T) {
	t.Parallel()
	const shopPublic = "shop-public-key-0123456789" // shop's page's
	sites := map[string]Site{"shop": {Keys: []string{shopKey}, PublishableKeys: []string{shopPublic}}}
	e := newEnvWith(t, nil, func(_ *env, o *Options) { o.Directory = NewDirectory(sites, nil) })
	post := func(key string) *httptest.ResponseRecorder {
		req := jsonPost(`{"title":"Ann","email":"ann@example.com"}`, key)
		req.Header.Set("Idempotency-Key", "order-1")
		return e.do(t, req)
	}
	first := post(shopPublic)
	if first.Code != http.StatusAccepted {
		t.Fatalf("publishable key submits: %d %s", first.Code, first.Body)
	}
	id := acceptedID(t, first)
	if again := post(shopPublic); again.Code != http.StatusAccepted || strings.Contains(again.Body.String(), "duplicate") {
		t.Errorf("a repeat with the publishable key: %d %s; want 202 as a new lead", again.Code, again.Body)
	}
	if again := post(shopKey); again.Code != http.StatusOK || !strings.Contains(again.Body.String(), `"duplicate":true`) {
		t.Errorf("a repeat with the secret key: %d %s; want 200 duplicate", again.Code, again.Body)
	}
	status := func(key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/leads/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		return e.do(t, req)
	}
	tests := []struct {
		name   string
		rec    *httptest.ResponseRecorder
		status int
		says   string
	}{
		{"status with the publishable key", status(shopPublic), http.StatusForbidden, "secret key"},
		{"status with the secret key", status(shopKey), http.StatusOK, `"status":"queued"`},
		{"batch with the publishable key", func() *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, "/v1/leads/batch", strings.NewReader(`{"leads":[{"lead":{"title":"Bob"}}]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+shopPublic)
			return e.do(t, req)
		}(), http.StatusForbidden, "secret key"},
		{"drop-in with the publishable key", e.do(t, dropGet("login=shop&apikey="+url.QueryEscape(shopPublic)+"&action=add&title=Cy")),
			http.StatusOK, "Success"},
	}
	for _, tt := range tests {
		if tt.rec.Code != tt.status || !strings.Contains(tt.rec.Body.String(), tt.says) {
			t.Errorf("%s: %d %s; want %d saying %q", tt.name, tt.rec.Code, tt.rec.Body, tt.status, tt.says)
		}
	}
}
