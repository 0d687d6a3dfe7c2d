package worker

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"leadrelay/crmclient"
	"leadrelay/lead"
	"leadrelay/tracing"
)

// traceRun starts the span of one run of lead p, the child of the
// publish its task records, in whatever process and attempt; end closes
// it with the run's outcome and reason code. Without a tracer both do
// nothing.
func (h *Handler) traceRun(ctx context.Context, p lead.Payload, attempt int) (context.Context, func(error)) {
	if h.o.Tracer == nil {
		return ctx, func(error) {}
	}
	ctx, span := h.o.Tracer.Start(tracing.WithTraceparent(ctx, p.Trace), tracing.SpanDeliver,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(tracing.LeadID.String(p.ID), tracing.Site.String(p.Site), tracing.Attempt.Int(attempt)))
	return ctx, func(err error) {
		defer span.End()
		if err == nil {
			span.SetAttributes(tracing.Outcome.String("delivered"))
			return
		}
		f := judge(err)
		span.SetAttributes(tracing.Outcome.String(f.out.String()), tracing.Reason.String(string(f.reason.Code)))
		if !f.out.Postpones() {
			span.SetStatus(codes.Error, string(f.reason.Code))
		}
	}
}

// traceStep starts the span of one step of a run (tracing.SpanBegin,
// SpanLookUp, SpanFinish, SpanDeadLetter) under the run's span; end closes
// it, marked failed when err is not nil. The error's text is never
// copied: it can quote a lead's field. Without a tracer both do nothing.
func (h *Handler) traceStep(ctx context.Context, name string) (context.Context, func(error)) {
	if h.o.Tracer == nil {
		return ctx, func(error) {}
	}
	ctx, span := h.o.Tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, name)
		}
		span.End()
	}
}

// traceCRM starts the span of one CRM call; end closes it with the
// answer's class and HTTP status. Never the URL, the key or the lead:
// the action names the call. Without a tracer both do nothing.
func traceCRM(ctx context.Context, tr trace.Tracer, action string) (context.Context, func(class string, err error)) {
	if tr == nil {
		return ctx, func(string, error) {}
	}
	ctx, span := tr.Start(ctx, tracing.SpanCRMPrefix+action, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.CRMAction.String(action)))
	return ctx, func(class string, err error) {
		defer span.End()
		span.SetAttributes(tracing.CRMClass.String(class))
		if status := crmclient.HTTPStatus(err); status != 0 {
			span.SetAttributes(tracing.HTTPStatus.Int(status))
		}
		if err != nil {
			span.SetStatus(codes.Error, class)
		}
	}
}
