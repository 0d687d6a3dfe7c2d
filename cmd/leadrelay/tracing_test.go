package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

// otlpSpan is one span an OTLP/HTTP receiver got: its service, name,
// trace and attributes as text.
type otlpSpan struct {
	service, name, trace string
	attrs                map[string]string
}

// otlpReceiver is a test's OTLP/HTTP trace receiver on 127.0.0.1.
type otlpReceiver struct {
	URL   string
	mu    sync.Mutex
	spans []otlpSpan
	raw   [][]byte
}

func startReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(rcv.serve))
	t.Cleanup(srv.Close)
	rcv.URL = srv.URL
	return rcv
}

func (rcv *otlpReceiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	rcv.raw = append(rcv.raw, b)
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				attrs := map[string]string{}
				for _, kv := range s.Attributes {
					attrs[kv.Key] = fmt.Sprint(kv.GetValue().GetValue())
				}
				rcv.spans = append(rcv.spans, otlpSpan{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId), attrs: attrs})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// got is every span received so far, and every request's bytes joined.
func (rcv *otlpReceiver) got() ([]otlpSpan, []byte) {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]otlpSpan(nil), rcv.spans...), bytes.Join(rcv.raw, nil)
}

// TestTracesExported: an intake and a worker process, told only the
// standard OTEL_EXPORTER_OTLP_ENDPOINT, export the spans of a lead to an
// OTLP/HTTP receiver: the intake request and the publish from intake, the
// run and the CRM add from the worker, all in one trace, named by their
// services. Nothing they send holds the CRM key, the site key or the
// lead's fields.
func TestTracesExported(t *testing.T) {
	t.Parallel()
	bin := hatest.Binary(t)
	rds := redistest.Start(t)
	_, crmURL := hatest.StartSim(t, 0)
	rcv := startReceiver(t)
	env := hatest.Env(rds.URL(), crmURL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL, "OTEL_BSP_SCHEDULE_DELAY=100")
	intake := hatest.Start(t, bin, "intake", env, "intake")
	worker := hatest.Start(t, bin, "worker", env, "worker")

	const email, phone, title = "ann.otlp@example.org", "+7 900 555-77-66", "Ann Otlp-Lee"
	code, body := postJSON(t, intake.URL(), hatest.SiteKey, "", map[string]any{"title": title, "email": email, "phone": phone})
	if code != http.StatusAccepted {
		t.Fatalf("lead: %d %v", code, body)
	}
	want := map[string]string{"intake POST /v1/leads": "leadrelay-intake", "publish": "leadrelay-intake",
		"deliver": "leadrelay-worker", "crm add": "leadrelay-worker"}
	var spans []otlpSpan
	waitUntil(t, 30*time.Second, func() string {
		return fmt.Sprintf("spans received: %v\nintake:\n%s\nworker:\n%s", spans, intake.Tail(), worker.Tail())
	}, func() bool {
		spans, _ = rcv.got()
		seen := map[string]bool{}
		for _, s := range spans {
			seen[s.name] = seen[s.name] || want[s.name] == s.service
		}
		return len(seen) >= len(want) && seen["intake POST /v1/leads"] && seen["publish"] && seen["deliver"] && seen["crm add"]
	})
	traces := map[string]bool{}
	for _, s := range spans {
		if want[s.name] != "" {
			traces[s.trace] = true
		}
	}
	if len(traces) != 1 {
		t.Errorf("the lead's spans are in %d traces, want 1: %v", len(traces), spans)
	}
	_, raw := rcv.got()
	for _, secret := range []string{hatest.CRMKey, hatest.SiteKey, email, phone, title} {
		if bytes.Contains(raw, []byte(secret)) || strings.Contains(fmt.Sprint(spans), secret) {
			t.Errorf("the exported spans hold %q", secret)
		}
	}
}
