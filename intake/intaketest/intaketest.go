// Package intaketest is the kit of tests that send leads through intake:
// what stands behind intake in the test's process (a private Redis, a
// worker delivering to a CRM, the publisher intake hands leads to), and
// forms as old sites' pages encode them. It does not import intake, so
// intake's own tests may use it too.
//
//	pub := intaketest.StartDelivery(t, crm, intaketest.SimWorker)
//	h := intake.New(intake.Options{Sites: keys}, pub, intaketest.Log(t))
package intaketest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/text/encoding/charmap"

	"leadrelay/crmclient"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/worker"
)

// SimWorker is a worker's options for a CRM simulator in the same
// process: short timeouts and retries, and a circuit that never opens, so
// a test's faults reach the look-up instead of the breaker.
var SimWorker = worker.Options{Concurrency: 2, CRMTimeout: 2 * time.Second, RetryInitial: 10 * time.Millisecond,
	RetryMaxDelay: 100 * time.Millisecond, BreakerThreshold: 1000, ShutdownTimeout: 5 * time.Second, PollInterval: 20 * time.Millisecond}

// StartDelivery starts a private Redis and one worker with options o
// delivering to crm, and returns the publisher intake gives its leads to,
// on the default queue. The worker stops at t's cleanup; a worker that
// ends with an error fails t. Logs below warn are dropped.
func StartDelivery(t testing.TB, crm *crmclient.Client, o worker.Options) *producer.Publisher {
	t.Helper()
	rc := redistest.Start(t).Client()
	StartWorker(t, crm, rc, o)
	return producer.New(rc, producer.Options{Queue: lead.DefaultQueue}, Log(t))
}

// StartWorker runs one worker with options o on rc, delivering to crm,
// until t's cleanup; a worker that ends with an error fails t.
func StartWorker(t testing.TB, crm *crmclient.Client, rc redis.UniversalClient, o worker.Options) {
	t.Helper()
	log := Log(t)
	h, err := worker.NewHandler(crm, rc, o, log)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(rc, h, o, log)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// Log is the log of a relay in a test: its warnings and errors go to t,
// the rest is dropped. Intake in front of StartDelivery's worker logs here.
func Log(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

// Encode is s in the single-byte charset cm, as an old site's page sends
// it; a rune cm lacks fails t.
func Encode(t testing.TB, cm *charmap.Charmap, s string) string {
	t.Helper()
	b, err := cm.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Form percent-encodes name/value pairs byte for byte and in their order,
// as a page in any charset does (url.QueryEscape does not look at
// charsets). An odd last name is dropped.
func Form(kv ...string) string {
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, url.QueryEscape(kv[i])+"="+url.QueryEscape(kv[i+1]))
	}
	return strings.Join(parts, "&")
}

// DropInGet is a drop-in add (the v1 path old sites post to) sent as GET
// with the form in query.
func DropInGet(query string) *http.Request {
	return httptest.NewRequest(http.MethodGet, "/developer/v1/leads?"+query, nil)
}

// DropInPost is a drop-in add POSTed with body, of contentType.
func DropInPost(contentType, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/developer/v1/leads", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	return r
}
