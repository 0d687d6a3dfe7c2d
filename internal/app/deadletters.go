package app

import (
	"context"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/lead"
	"leadrelay/notify"
	"leadrelay/worker"
)

// deadLetters adapts the deadletter store to the worker's DeadLetters
// interface: the worker knows the lead and the reason, the asynq context
// knows the queue and the attempt.
type deadLetters struct {
	store  *deadletter.Store
	codec  lead.Codec // seals the payload the record keeps
	queue  string
	notify notify.Notifier // told of every lead stored as dead; nil: nobody
}

// Put records a dead lead with its reason and the attempt that ended it,
// which also opens its error history.
func (d deadLetters) Put(ctx context.Context, p lead.Payload, death worker.Death) error {
	payload, err := d.codec.Encode(p)
	if err != nil {
		return err
	}
	attempt := max(death.Attempt, 1)
	queue := d.queue
	if q, ok := asynq.GetQueueName(ctx); ok {
		queue = q
	}
	now := time.Now().UTC()
	if err := d.store.Put(ctx, deadletter.Record{
		LeadID: p.ID, Site: p.Site, Queue: queue, Reason: death.Reason, Attempts: attempt,
		DeadAt: now, ReceivedAt: p.ReceivedAt, Payload: payload,
		Errors: []deadletter.AttemptError{{At: now, Attempt: attempt, Class: death.Outcome.String(), Reason: death.Reason}},
	}); err != nil {
		return err
	}
	if d.notify != nil {
		d.notify.Notify(notify.Event{Kind: notify.LeadDead, Site: p.Site, LeadID: p.ID, Reason: death.Reason})
	}
	return nil
}

// Forget drops a lead that was delivered after all.
func (d deadLetters) Forget(ctx context.Context, leadID string) error {
	return d.store.Forget(ctx, leadID)
}
