package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of LeadRelay's tracer.
const Scope = "leadrelay"

// Span names.
const (
	// SpanPublish is the producer's admission and enqueue of one lead.
	SpanPublish = "publish"
	// SpanDeliver is one run of the worker on one lead.
	SpanDeliver = "deliver"
	// SpanCRMPrefix starts the name of a CRM call's span: "crm add".
	SpanCRMPrefix = "crm "
	// SpanBegin is a run's start in the store: the delivered marker, the
	// lock and the write-ahead "sending" record.
	SpanBegin = "begin"
	// SpanLookUp is a run's look-up of an uncertain earlier add (its CRM
	// calls are its children).
	SpanLookUp = "look-up"
	// SpanFinish is the record of a delivery: the marker, the CRM id's
	// claim, the timeline and the result.
	SpanFinish = "finish"
	// SpanDeadLetter is the dead-lettering of a lead that cannot succeed.
	SpanDeadLetter = "dead-letter"
)

// The attribute keys LeadRelay's spans carry. Each is an identifier, a
// count, a code or an outcome; none is a lead's field, a key or a URL.
const (
	// LeadID is the relay's lead id (ld_…), derived by a hash.
	LeadID = attribute.Key("leadrelay.lead_id")
	// Site is the name of the site that sent the lead.
	Site = attribute.Key("leadrelay.site")
	// Outcome is how a request, a publish or a run ended (accepted,
	// delivered, retried, …).
	Outcome = attribute.Key("leadrelay.outcome")
	// Reason is a failure's delivery.Code.
	Reason = attribute.Key("leadrelay.reason")
	// Attempt is the run's number, 1 for the first.
	Attempt = attribute.Key("leadrelay.attempt")
	// Duplicate says a published lead was known already.
	Duplicate = attribute.Key("leadrelay.duplicate")
	// CRMAction is the CRM API's action: add, list.
	CRMAction = attribute.Key("leadrelay.crm.action")
	// CRMClass is the class of a CRM call's answer ("ok" or a
	// crmclient.Class name).
	CRMClass = attribute.Key("leadrelay.crm.class")
	// HTTPMethod and HTTPRoute name intake's request; HTTPRoute is the
	// route's pattern, never the path a client sent.
	HTTPMethod = attribute.Key("http.request.method")
	// HTTPRoute is the route's pattern, e.g. /v1/leads/{id}.
	HTTPRoute = attribute.Key("http.route")
	// HTTPStatus is the HTTP status of intake's answer or of the CRM's.
	HTTPStatus = attribute.Key("http.response.status_code")
)

// Allowed are the attribute keys a LeadRelay span may carry; the tests
// check every span against it, so a new attribute is a decision made here.
var Allowed = map[attribute.Key]bool{
	LeadID: true, Site: true, Outcome: true, Reason: true, Attempt: true, Duplicate: true,
	CRMAction: true, CRMClass: true, HTTPMethod: true, HTTPRoute: true, HTTPStatus: true,
}

// traceContext reads and writes the W3C traceparent only: tracestate is
// the sender's free text, and a task carries nothing it need not.
var traceContext = propagation.TraceContext{}

// Traceparent is the W3C traceparent of the span in ctx, for a task to
// carry; "" when ctx holds no valid span context.
func Traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceparent returns ctx with the remote span context tp names as
// the parent of the spans started from it; ctx itself when tp is empty
// or not a valid traceparent (a task of the previous version, or of a
// relay tracing nothing).
func WithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// FromHeaders returns ctx with the parent a request's traceparent header
// names, when it names a valid one: a site that traces its own requests
// finds LeadRelay's spans in its trace.
func FromHeaders(ctx context.Context, h propagation.HeaderCarrier) context.Context {
	if h.Get("traceparent") == "" {
		return ctx
	}
	return traceContext.Extract(ctx, h)
}
