// Package lead holds what the producer and the worker share: the Lead a site
// submits, its validation, the relay's envelope around it (site, idempotency
// key, lead id) and the asynq task that carries it through Redis.
//
// Fields is the one table of a lead's fields (wire name, length, rule, CRM
// parameter per API version, drop-in aliases): decoding, validation, the
// CRM mapping and the digest read it. Digest is the lead's content digest;
// its text carries its version, so a new way of digesting never changes
// the ids of leads already stored.
//
// The producer builds a task with NewTask and enqueues it; the worker decodes
// it with ParsePayload. Neither imports the other.
//
//	l := lead.Lead{Title: "Ann", Email: "ann@example.com"}
//	l.Normalize()
//	if err := l.Validate(); err != nil { /* 400, naming every bad field */ }
//	p := lead.NewPayload("shop", "order-42", l, time.Now())
//	task, opts, err := lead.NewTask(p)
package lead
