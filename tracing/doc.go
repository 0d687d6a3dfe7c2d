// Package tracing is the one home of LeadRelay's OpenTelemetry traces: the
// span names, the attribute keys a span may carry (Allowed: identifiers,
// outcomes and codes, never a lead's fields, a key or a URL), the
// traceparent a lead's task carries from intake to the worker, and the SDK
// set up from the standard OTEL_* variables (Start).
//
// Tracing is off by default. With it off nothing here runs: intake,
// producer and worker take a nil trace.Tracer and start no span, and a
// task carries no traceparent. With it on, one lead is one trace:
//
//	intake POST /v1/leads            (the site's traceparent, if it sent one, is its parent)
//	└─ publish                       (admission and enqueue; the task records this span)
//	   ├─ deliver                    (one per run of the worker, in any process, any attempt)
//	   │  ├─ begin                   (the store: marker, lock, write-ahead "sending")
//	   │  ├─ look-up                 (of an uncertain earlier add; its crm list calls under it)
//	   │  ├─ crm add                 (the CRM call: action, HTTP status, class)
//	   │  ├─ finish                  (the store: marker, claim, timeline, result)
//	   │  └─ dead-letter             (a lead that cannot succeed, put in the dead-letter store)
//	   └─ deliver …
package tracing
