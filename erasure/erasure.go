package erasure

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/deadletter"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
	"leadrelay/status"
)

// DefaultWait is how long Erase waits, by default, for a lead whose
// delivery is running to settle.
const DefaultWait = 30 * time.Second

// Options configure an Eraser. The zero value erases on lead.DefaultQueue,
// opens only plaintext payloads, waits DefaultWait and logs nothing.
type Options struct {
	// Queue is the asynq queue of lead tasks. Empty: lead.DefaultQueue.
	Queue string
	// Codec opens sealed payloads, to find leads by e-mail or phone.
	Codec lead.Codec
	// Wait bounds how long Erase waits for a running delivery (a task in
	// asynq's active state, whose worker holds the payload and writes it
	// back when the run ends) to end before it erases the lead. A lead
	// still running then is reported Unreached. Zero: DefaultWait.
	Wait time.Duration
	// Log receives the audit line of each erasure. Nil: none.
	Log *zap.Logger
}

// Eraser erases leads. It is safe for concurrent use.
type Eraser struct {
	insp   *asynq.Inspector
	reader *status.Reader
	store  *rdb.Store
	dead   *deadletter.Store
	o      Options
}

// New returns an Eraser on rc, which stays the caller's.
func New(rc redis.UniversalClient, o Options) *Eraser {
	if o.Queue == "" {
		o.Queue = lead.DefaultQueue
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return &Eraser{insp: asynq.NewInspectorFromRedisClient(rc), reader: status.New(rc, o.Queue).Opening(o.Codec), store: rdb.New(rc),
		dead: deadletter.New(rc, deadletter.Options{Codec: o.Codec}), o: o}
}

// Query names the leads to erase: by id, and every lead whose e-mail or
// phone is the person's. At least one of IDs, Email and Phone is needed.
type Query struct {
	// IDs are lead ids.
	IDs []string
	// Email finds every lead with this e-mail address (any case).
	Email string
	// Phone finds every lead with this phone number (its digits).
	Phone string
	// By names who asked (an operator, "ctl"), for the audit line.
	By string
}

// ErrQuery is wrapped by the error of a Query that names no lead.
var ErrQuery = errors.New("erasure: give lead ids, an e-mail or a phone")

// Lead is what Erase removed of one lead.
type Lead struct {
	// ID is the lead id.
	ID string `json:"id"`
	// Site is the site that sent it, when anything erased named it.
	Site string `json:"site,omitempty"`
	// Task is the asynq state its task was deleted from ("" when asynq
	// held none).
	Task string `json:"task,omitempty"`
	// Undelivered is true when the lead was queued or retrying: it will
	// not be delivered now.
	Undelivered bool `json:"undelivered,omitempty"`
	// DeadLetter is true when a dead-letter record was removed.
	DeadLetter bool `json:"dead_letter,omitempty"`
	// Entries counts LeadRelay's own keys and entries removed (attempt
	// record, timeline, keyless identity, poison bookkeeping).
	Entries int `json:"entries"`
	// Unreached says why the lead was not erased ("running": its
	// delivery did not end within Options.Wait); empty when it was.
	Unreached string `json:"unreached,omitempty"`
}

// Report is what Erase did.
type Report struct {
	// Leads are the leads erased or found, one each.
	Leads []Lead `json:"leads"`
	// Tasks, DeadLetters and Entries total the Leads' removals;
	// Undelivered counts the leads that were still to be delivered.
	Tasks       int `json:"tasks"`
	DeadLetters int `json:"dead_letters"`
	Entries     int `json:"entries"`
	Undelivered int `json:"undelivered"`
	// Unreached counts the leads not erased (see Lead.Unreached): erase
	// them again.
	Unreached int `json:"unreached"`
	// Truncated is true when a search by e-mail or phone stopped at its
	// bound: erase again.
	Truncated bool `json:"truncated,omitempty"`
	// Kept says what stays of an erased lead, and what erasure cannot
	// reach.
	Kept []string `json:"kept"`
}

// kept is Report.Kept: what stays, for every erasure.
var kept = []string{
	"the delivered marker of a delivered lead (site, CRM id, time, a prefix of the content digest): without it a repeat would be delivered again",
	"the CRM id's claim (a CRM id and a lead id)",
	"the CRM's own copy of a delivered lead: erase it in SalesMan",
	"older Redis files: replicas catch up at once; backups and an append-only file keep it until rewritten (BGREWRITEAOF)",
}

// Erase erases the leads q names and reports what it removed; with an
// e-mail or phone, the leads it finds that hold them. It writes one audit
// line (lead ids and counts, never the person's data). An error means
// Redis failed midway: the Report says what was erased until then, and
// erasing again finishes the job.
func (e *Eraser) Erase(ctx context.Context, q Query) (Report, error) {
	rep := Report{Leads: []Lead{}, Kept: kept}
	if len(q.IDs) == 0 && q.Email == "" && q.Phone == "" {
		return rep, ErrQuery
	}
	ids := q.IDs
	if q.Email != "" || q.Phone != "" {
		found, truncated, err := e.find(ctx, q.Email, q.Phone)
		if err != nil {
			return rep, err
		}
		ids, rep.Truncated = append(ids, found...), truncated
	}
	erased := map[string]bool{}
	var err error
	for _, id := range ids {
		if erased[id] {
			continue
		}
		erased[id] = true
		var l Lead
		if l, err = e.eraseLead(ctx, id); err != nil {
			break
		}
		if l.Task != "" || l.DeadLetter || l.Entries > 0 || l.Unreached != "" {
			rep.add(l)
		}
	}
	if err == nil {
		var n int
		n, err = e.store.EraseKeyless(ctx, func(site, identity string) bool { return erased[lead.ID(site, identity)] })
		rep.Entries += n
	}
	e.audit(q, rep, err)
	return rep, err
}

func (r *Report) add(l Lead) {
	r.Leads = append(r.Leads, l)
	r.Entries += l.Entries
	if l.Task != "" {
		r.Tasks++
	}
	if l.DeadLetter {
		r.DeadLetters++
	}
	if l.Undelivered {
		r.Undelivered++
	}
	if l.Unreached != "" {
		r.Unreached++
	}
}

// audit logs the erasure: who asked, by what kind of query, the lead ids
// and the counts. Never the e-mail or phone asked for.
func (e *Eraser) audit(q Query, rep Report, err error) {
	by := []string{}
	for kind, given := range map[string]bool{"id": len(q.IDs) > 0, "email": q.Email != "", "phone": q.Phone != ""} {
		if given {
			by = append(by, kind)
		}
	}
	ids := make([]string, 0, len(rep.Leads))
	for _, l := range rep.Leads {
		ids = append(ids, l.ID)
	}
	fields := []zap.Field{zap.String("by", q.By), zap.Strings("query", by), zap.Strings("lead_ids", ids),
		zap.Int("tasks", rep.Tasks), zap.Int("dead_letters", rep.DeadLetters), zap.Int("entries", rep.Entries),
		zap.Int("undelivered", rep.Undelivered), zap.Int("unreached", rep.Unreached)}
	if err != nil {
		e.o.Log.Error("erasure incomplete", append(fields, zap.Error(err))...)
		return
	}
	e.o.Log.Info("erasure", fields...)
}

// eraseLead erases one lead: its task first, so no run writes the rest
// again, then its dead letter and LeadRelay's own entries.
func (e *Eraser) eraseLead(ctx context.Context, id string) (Lead, error) {
	l := Lead{ID: id}
	if err := e.eraseTask(ctx, &l); err != nil || l.Unreached != "" {
		return l, err
	}
	if rec, err := e.dead.Get(ctx, id); err == nil {
		l.Site, l.DeadLetter = rec.Site, true
	} else if !errors.Is(err, deadletter.ErrNotFound) {
		return l, err
	}
	if err := e.dead.Forget(ctx, id); err != nil {
		return l, err
	}
	n, err := e.store.EraseLead(ctx, id)
	l.Entries += n
	return l, err
}

// eraseTask deletes the lead's task in whatever state asynq holds it.
// A running task (active) is waited for, up to Options.Wait: its worker
// holds the payload and writes it back (retry, archive, completed) when
// the run ends, so deleting under it would not erase it. An undelivered
// lead's place in its site's backlog is given back.
func (e *Eraser) eraseTask(ctx context.Context, l *Lead) error {
	deadline := time.Now().Add(e.o.Wait)
	var failed error // the last delete's error, if it was not a running task's
	for {
		info, err := e.insp.GetTaskInfo(e.o.Queue, l.ID)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("erasure: task %s: %w", l.ID, err)
		}
		if env, err := lead.ReadEnvelope(info.Payload); err == nil {
			l.Site = env.Site
		}
		if info.State != asynq.TaskStateActive {
			err = e.insp.DeleteTask(e.o.Queue, l.ID)
			if err == nil {
				return e.deleted(ctx, l, info.State)
			}
			if errors.Is(err, asynq.ErrTaskNotFound) {
				continue // it moved or went meanwhile: look again
			}
			failed = err // or it began to run meanwhile: look again
		}
		if time.Now().After(deadline) {
			if failed != nil {
				return fmt.Errorf("erasure: delete task %s: %w", l.ID, failed)
			}
			l.Unreached = "running"
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deleted records that the task was deleted from state, giving back an
// undelivered lead's place in its site's backlog.
func (e *Eraser) deleted(ctx context.Context, l *Lead, state asynq.TaskState) error {
	l.Task = state.String()
	switch state {
	case asynq.TaskStatePending, asynq.TaskStateScheduled, asynq.TaskStateRetry, asynq.TaskStateAggregating:
		l.Undelivered = true
		if l.Site != "" {
			return e.store.Unreserve(ctx, e.o.Queue, l.Site)
		}
	}
	return nil
}
