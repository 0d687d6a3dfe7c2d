// Package producer enqueues leads for delivery to the CRM. It is the Go
// library behind intake and the entry point for Go programs that produce
// leads themselves.
//
// Publish validates a lead and enqueues it as one asynq task whose id is
// derived from the site and its idempotency key (or the lead's content), so
// the same submission twice is one task; Status tells a site where its lead
// is (package status answers). Any Redis failure of Publish is an error
// wrapping ErrUnavailable: a lead is never dropped silently.
//
//	p := producer.New(rdb, producer.Options{Queue: "leads"}, log)
//	r, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann"}, "order-42")
//	switch {
//	case errors.Is(err, producer.ErrUnavailable): // 503, try again later
//	case err != nil: // *lead.ValidationError: 400
//	}
//
// Besides asynq's task, the producer writes nothing per lead: one script
// (rdb.Store.Admit) checks the delivered marker and counts the lead in its
// site's backlog, within the caps.
package producer
