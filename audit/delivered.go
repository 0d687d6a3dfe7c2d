package audit

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/lead"
)

// delivered reads the leads delivered since since, newest first: asynq
// keeps a delivered task (its CRM id as its result) in the queue's
// completed set, ordered by when it expires, so the newest are on the
// last pages. It stops at the first page older than since, or after
// MaxPages. unreadable counts tasks it could not open or place.
func (a *Auditor) delivered(ctx context.Context, since time.Time) (ds []Delivered, unreadable int, err error) {
	// asynq knows a queue once a task was put on it; its "not found" is
	// not an error asynq's errors.Is tells.
	queues, err := a.insp.Queues()
	if err != nil || !slices.Contains(queues, a.o.Queue) {
		return nil, 0, err
	}
	info, err := a.insp.GetQueueInfo(a.o.Queue)
	if err != nil {
		return nil, 0, err
	}
	size := a.o.PageSize
	last := (info.Completed + size - 1) / size
	for page, read := last, 0; page >= 1 && read < a.o.MaxPages; page, read = page-1, read+1 {
		tasks, err := a.insp.ListCompletedTasks(a.o.Queue, asynq.Page(page), asynq.PageSize(size))
		if err != nil {
			return nil, 0, err
		}
		older := false
		for _, t := range tasks {
			if t.CompletedAt.Before(since) {
				older = true
				continue
			}
			d, ok := a.deliveredOf(ctx, t)
			if !ok {
				unreadable++
				continue
			}
			ds = append(ds, d)
		}
		if older || ctx.Err() != nil {
			break
		}
	}
	return ds, unreadable, ctx.Err()
}

// deliveredOf is a delivered task as the audit compares it: its lead, the
// CRM id the relay recorded (the task's result, or else the delivered
// marker) and its content's hash as sent.
func (a *Auditor) deliveredOf(ctx context.Context, t *asynq.TaskInfo) (Delivered, bool) {
	env, err := lead.ReadEnvelope(t.Payload)
	if err != nil {
		return Delivered{}, false
	}
	p, hash := lead.Payload{ID: env.ID, Site: env.Site}, env.Sent
	if !env.Bare { // a task not reduced to its envelope yet (worker.stripDelivered)
		if p, err = a.o.Codec.Decode(t.Payload); err != nil {
			return Delivered{}, false
		}
		hash = a.src.SentHash(p)
	}
	id, err := strconv.ParseInt(string(t.Result), 10, 64)
	if err != nil || id <= 0 {
		_, m, err := a.store.Lead(ctx, p.ID)
		if err != nil || m == nil || m.CRMID <= 0 {
			return Delivered{}, false
		}
		id = m.CRMID
	}
	return Delivered{LeadID: p.ID, Site: p.Site, CRMID: id, Hash: a.o.IDKey.SentSum(hash)}, true
}
