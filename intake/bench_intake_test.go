package intake_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"leadrelay/intake"
	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/status"
)

// instantPublisher takes every lead at once: the benchmark measures
// intake alone.
type instantPublisher struct{}

func (instantPublisher) Publish(_ context.Context, site string, _ lead.Lead, key string) (producer.Receipt, error) {
	return producer.Receipt{ID: lead.ID(site, key)}, nil
}

func (instantPublisher) Status(context.Context, string, string) (status.Status, error) {
	return status.Status{}, status.ErrNotFound
}

// BenchmarkIntakeLead measures one POST /v1/leads through intake's whole
// handler (middleware, auth, decoding, validation) to an instant
// publisher, with the default options: no tracer, no observer.
func BenchmarkIntakeLead(b *testing.B) {
	const key = "bench-site-key-0123456789"
	h := intake.New(intake.Options{Sites: map[string]string{"shop": key}}, instantPublisher{}, zap.NewNop())
	body := `{"title":"Ann Lee","email":"ann@example.com","phone":"+79001234567","description":"Call me back"}`
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v1/leads", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "k"+strconv.Itoa(i))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
