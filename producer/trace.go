package producer

import (
	"errors"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"leadrelay/lead"
	"leadrelay/tracing"
)

// traced ends a publish span's record: the lead id, duplicate or not,
// and how it ended as a word. Never the error's text, which may quote a
// field or the site's key.
func traced(span trace.Span, rc Receipt, err error) {
	if rc.ID != "" {
		span.SetAttributes(tracing.LeadID.String(rc.ID))
	}
	if err == nil {
		span.SetAttributes(tracing.Outcome.String("enqueued"), tracing.Duplicate.Bool(rc.Duplicate))
		return
	}
	outcome := publishOutcome(err)
	span.SetAttributes(tracing.Outcome.String(outcome))
	span.SetStatus(codes.Error, outcome)
}

// publishOutcome names the error Publish returned.
func publishOutcome(err error) string {
	var (
		ve   *lead.ValidationError
		full *BacklogFullError
	)
	switch {
	case errors.As(err, &ve):
		return "invalid"
	case errors.As(err, &full):
		return "backlog_full"
	case errors.Is(err, ErrKeyReused):
		return "key_reused"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	}
	return "error"
}
