package crmsim

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func BenchmarkAddV2(b *testing.B) {
	sim, err := New(Config{APIKey: testKey, Logger: zap.NewExample().WithOptions(zap.IncreaseLevel(zap.InfoLevel))})
	if err != nil {
		b.Fatal(err)
	}
	body := url.Values{"login": {"admin@example.com"}, "apikey": {testKey}, "action": {"add"},
		"title": {"Bench"}, "email": {"b@example.com"}, "uids[relay_id]": {"r"}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, PathV2, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		sim.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkListV2Of5000(b *testing.B) {
	sim, _ := New(Config{APIKey: testKey})
	sim.mu.Lock()
	for range 5000 {
		sim.addLead(leadInput{api: APIv2, title: "x"})
	}
	sim.mu.Unlock()
	body := url.Values{"login": {"admin@example.com"}, "apikey": {testKey}, "action": {"list"}, "offset": {"3"}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, PathV2, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		sim.ServeHTTP(httptest.NewRecorder(), req)
	}
}
