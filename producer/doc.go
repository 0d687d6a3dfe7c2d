// Package producer enqueues leads for delivery to the CRM. It is the Go
// library behind intake and the entry point for Go programs that produce
// leads themselves.
//
// Publish validates a lead and enqueues it as one asynq task whose id is
// derived from the site and its idempotency key (or the lead's content), so
// the same submission twice is one task; Status tells a site where its lead
// is. Any Redis failure is an error wrapping ErrUnavailable: a lead is never
// dropped silently.
//
//	p := producer.New(rdb, producer.Options{Queue: "leads"}, log)
//	r, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann"}, "order-42")
//	switch {
//	case errors.Is(err, producer.ErrUnavailable): // 503, try again later
//	case err != nil: // *lead.ValidationError: 400
//	}
//
// Besides asynq's keys, the producer writes one key per lead,
// leadrelay:owner:{leadID} (the site's name), so that Status can tell which
// site owns a lead after its task has expired and only the worker's
// delivered marker remains.
package producer
