// Package lead holds what the producer and the worker share: the Lead a site
// submits, its validation, the relay's envelope around it (site, idempotency
// key, lead id) and the asynq task that carries it through Redis.
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
