package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/crmsim/crmsimtest"
	"leadrelay/intake"
	"leadrelay/intake/intaketest"
	"leadrelay/internal/redistest"
	"leadrelay/producer"
	"leadrelay/tracing"
	"leadrelay/worker"
)

const (
	crmKey  = "crm-secret-key-0123456789"
	siteKey = "shop-site-key-0123456789abc"
	// siteParent is the traceparent the site sends: LeadRelay's spans
	// join the site's own trace.
	siteTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	siteSpan   = "00f067aa0ba902b7"
	siteParent = "00-" + siteTrace + "-" + siteSpan + "-01"
)

// personal are the lead's fields: no span may carry any of them.
var personal = []string{"Ann Lee-Tracer", "ann.tracer@example.org", "+7 900 555-01-02", "Tracer & Sons", "call after six"}

// relay is intake, the producer and one worker, each tracing into rec,
// on a private redis-server, delivering to the simulator.
type relay struct {
	intake http.Handler
	sim    *crmsim.Sim
	base   string
	rec    *tracetest.SpanRecorder
}

func startRelay(t *testing.T, tune ...func(*worker.Options)) *relay {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tp.Tracer(tracing.Scope)

	sim, base := crmsimtest.Start(t, crmsim.Config{APIKey: crmKey, Seed: 1})
	crm, err := crmclient.New(base, "admin@example.com", crmKey, crmclient.WithAPIVersion(crmclient.V2))
	if err != nil {
		t.Fatal(err)
	}
	rc := redistest.Start(t).Client()
	o := intaketest.SimWorker
	o.Tracer = tr
	for _, f := range tune {
		f(&o)
	}
	intaketest.StartWorker(t, crm, rc, o)
	log := intaketest.Log(t)
	pub := producer.New(rc, producer.Options{Tracer: tr}, log)
	in := intake.New(intake.Options{Sites: map[string]string{"shop": siteKey}, Tracer: tr}, pub, log)
	return &relay{intake: in, sim: sim, base: base, rec: rec}
}

// waitSpan waits until an ended span satisfies ok.
func (r *relay) waitSpan(t *testing.T, what string, ok func(sdktrace.ReadOnlySpan) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range r.rec.Ended() {
			if ok(s) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s span after 20s; spans: %v", what, names(r.rec.Ended()))
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, k string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

func outcome(name, want string) func(sdktrace.ReadOnlySpan) bool {
	return func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == name && attr(s, string(tracing.Outcome)) == want
	}
}

// TestOneLeadOneTrace: a lead sent with the site's traceparent, failed
// once by the CRM (503) and delivered on its second run, is one trace:
// intake's request under the site's span, the publish under it, both
// runs under the publish, each CRM add under its run. No span carries an
// attribute outside tracing.Allowed, a lead's field, a key or the CRM's
// address.
func TestOneLeadOneTrace(t *testing.T) {
	t.Parallel()
	r := startRelay(t)
	r.sim.SetFaults(crmsim.Faults{ErrorRate: 1, ErrorStatus: 503})
	body := `{"title":"` + personal[0] + `","email":"` + personal[1] + `","phone":"` + personal[2] +
		`","company":"` + personal[3] + `","description":"` + personal[4] + `"}`
	req := httptest.NewRequest(http.MethodPost, "/v1/leads", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+siteKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", siteParent)
	rec := httptest.NewRecorder()
	r.intake.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("intake answered %d: %s", rec.Code, rec.Body)
	}
	r.waitSpan(t, "failed run", outcome(tracing.SpanDeliver, "retry"))
	r.sim.SetFaults(crmsim.Faults{})
	r.waitSpan(t, "delivered run", outcome(tracing.SpanDeliver, "delivered"))

	spans := r.rec.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
		if got := s.SpanContext().TraceID().String(); got != siteTrace {
			t.Errorf("span %s is in trace %s, not the site's %s", s.Name(), got, siteTrace)
		}
	}
	in, pub := one(t, byName, "intake POST /v1/leads"), one(t, byName, tracing.SpanPublish)
	parentIs(t, in, siteSpan)
	parentIs(t, pub, in.SpanContext().SpanID().String())
	runs := byName[tracing.SpanDeliver]
	if len(runs) < 2 {
		t.Fatalf("%d delivery runs traced, want a failed one and the delivery", len(runs))
	}
	runIDs := map[string]bool{}
	for _, run := range runs {
		parentIs(t, run, pub.SpanContext().SpanID().String())
		runIDs[run.SpanContext().SpanID().String()] = true
	}
	adds := byName[tracing.SpanCRMPrefix+"add"]
	statuses := map[string]bool{}
	for _, add := range adds {
		if !runIDs[add.Parent().SpanID().String()] {
			t.Errorf("crm add span's parent %s is no run", add.Parent().SpanID())
		}
		statuses[attr(add, string(tracing.HTTPStatus))] = true
	}
	if !statuses["503"] || !statuses["200"] {
		t.Errorf("crm add spans' HTTP statuses %v, want 503 and 200", statuses)
	}
	if got := attr(in, string(tracing.LeadID)); got == "" || got != attr(runs[0], string(tracing.LeadID)) {
		t.Errorf("intake's lead id %q, the run's %q", got, attr(runs[0], string(tracing.LeadID)))
	}
	noSecrets(t, spans, append([]string{crmKey, siteKey, strings.TrimPrefix(r.base, "http://")}, personal...))
}

// TestRunStepsTraced: a run's steps are spans under it: Begin in every
// run, the look-up of an add whose answer was lost, Finish of the
// delivery, and the dead-lettering of a lead the CRM rejects.
func TestRunStepsTraced(t *testing.T) {
	t.Parallel()
	r := startRelay(t, func(o *worker.Options) { o.ReconcileAfter = 100 * time.Millisecond })
	r.sim.SetFaults(crmsim.Faults{AmbiguousRate: 1, RejectMarker: "reject-me"})
	r.post(t, `{"title":"Ann Lee","email":"ann@example.com"}`)
	r.waitSpan(t, "look-up", func(s sdktrace.ReadOnlySpan) bool { return s.Name() == tracing.SpanLookUp })
	r.waitSpan(t, "delivered run", outcome(tracing.SpanDeliver, "delivered"))
	r.post(t, `{"title":"Bob reject-me","email":"bob@example.com"}`)
	r.waitSpan(t, "dead-letter", func(s sdktrace.ReadOnlySpan) bool { return s.Name() == tracing.SpanDeadLetter })

	spans := r.rec.Ended()
	runs := map[string]string{} // span id → outcome
	for _, s := range spans {
		if s.Name() == tracing.SpanDeliver {
			runs[s.SpanContext().SpanID().String()] = attr(s, string(tracing.Outcome))
		}
	}
	under := map[string]map[string]bool{} // step → outcomes of the runs it is under
	for _, s := range spans {
		switch s.Name() {
		case tracing.SpanBegin, tracing.SpanLookUp, tracing.SpanFinish, tracing.SpanDeadLetter:
			out, ok := runs[s.Parent().SpanID().String()]
			if !ok {
				t.Errorf("%s span's parent %s is no run", s.Name(), s.Parent().SpanID())
				continue
			}
			if under[s.Name()] == nil {
				under[s.Name()] = map[string]bool{}
			}
			under[s.Name()][out] = true
		}
	}
	for step, out := range map[string]string{tracing.SpanBegin: "delivered", tracing.SpanLookUp: "delivered",
		tracing.SpanFinish: "delivered", tracing.SpanDeadLetter: "dead"} {
		if !under[step][out] {
			t.Errorf("no %s span under a %s run; steps under runs: %v", step, out, under)
		}
	}
	noSecrets(t, spans, []string{crmKey, siteKey, "Ann Lee", "ann@example.com", "reject-me", "bob@example.com"})
}

// post sends body to intake as the site and wants 202.
func (r *relay) post(t *testing.T, body string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/leads", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+siteKey)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	r.intake.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("intake answered %d: %s", rec.Code, rec.Body)
	}
}

func one(t *testing.T, byName map[string][]sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	if len(byName[name]) != 1 {
		t.Fatalf("%d %q spans, want 1", len(byName[name]), name)
	}
	return byName[name][0]
}

func parentIs(t *testing.T, s sdktrace.ReadOnlySpan, id string) {
	t.Helper()
	if got := s.Parent().SpanID().String(); got != id {
		t.Errorf("span %s's parent is %s, want %s", s.Name(), got, id)
	}
}

// noSecrets fails on a span whose name, status, attributes or events
// hold any of secrets, or an attribute not in tracing.Allowed.
func noSecrets(t *testing.T, spans []sdktrace.ReadOnlySpan, secrets []string) {
	t.Helper()
	for _, s := range spans {
		texts := []string{s.Name(), s.Status().Description}
		for _, kv := range s.Attributes() {
			if !tracing.Allowed[kv.Key] {
				t.Errorf("span %s carries attribute %s, not in tracing.Allowed", s.Name(), kv.Key)
			}
			texts = append(texts, kv.Value.Emit())
		}
		for _, e := range s.Events() {
			texts = append(texts, e.Name)
			for _, kv := range e.Attributes {
				texts = append(texts, string(kv.Key)+"="+kv.Value.Emit())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %s holds %q: %q", s.Name(), secret, text)
				}
			}
		}
	}
}

var _ trace.Tracer // the API the relay's parts take
