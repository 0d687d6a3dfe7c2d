package intake

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"leadrelay/internal/respstatus"
	"leadrelay/tracing"
)

// traceRequests starts a span for every request, the child of the
// site's traceparent when it sent one, and ends it with the site, the
// lead id and the outcome noted for the log line, and the status. The
// span names the route, never the path, query or body a client sent. It
// runs inside logRequests, which holds the note and the status. A nil
// tracer traces nothing.
func traceRequests(tr trace.Tracer) middleware {
	return func(next http.Handler) http.Handler {
		if tr == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			route := routeOf(r.URL.Path)
			ctx := tracing.FromHeaders(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tr.Start(ctx, "intake "+r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(tracing.HTTPMethod.String(r.Method), tracing.HTTPRoute.String(route)))
			defer span.End()
			next.ServeHTTP(w, r.WithContext(ctx))
			rl, _ := r.Context().Value(reqLogKey{}).(*reqLog)
			sw, _ := w.(*respstatus.Recorder)
			if rl == nil || sw == nil {
				return
			}
			attrs := []attribute.KeyValue{tracing.HTTPStatus.Int(sw.Code()), tracing.Outcome.String(rl.outcome)}
			if rl.site != "" {
				attrs = append(attrs, tracing.Site.String(rl.site))
			}
			if rl.leadID != "" {
				attrs = append(attrs, tracing.LeadID.String(rl.leadID))
			}
			span.SetAttributes(attrs...)
			if sw.Code() >= 500 {
				span.SetStatus(codes.Error, rl.outcome)
			}
		})
	}
}

// routes are intake's routes as a span names them.
var routes = []string{"/v1/leads", "/v1/leads/batch", "/developer/v1/leads", "/developer/v2/lead", "/openapi.json", "/"}

// routeOf is the route pattern of path: a lead's status is
// /v1/leads/{id}, anything unknown "other", so no text a client chose
// reaches a span.
func routeOf(path string) string {
	for _, r := range routes {
		if path == r {
			return r
		}
	}
	if id, ok := strings.CutPrefix(path, "/v1/leads/"); ok && id != "" && !strings.Contains(id, "/") {
		return "/v1/leads/{id}"
	}
	return "other"
}
