// Package status is the one answer to "where is my lead": it reads asynq's
// task, the lead's attempt record and delivered marker (internal/rdb) and
// its dead-letter record, and says which delivery.State the lead is in,
// how many attempts it took, why its last run failed and the timeline of
// its runs. The site API
// (GET /v1/leads/{id}, through the producer), `leadrelay ctl lead status`
// and the ops page all ask it; sites read the reason's site text,
// operators its operators' text.
//
//	r := status.New(rdb, queue)
//	st, err := r.ForSite(ctx, "shop", id) // a site's own lead, or ErrNotFound
//	fmt.Println(st.State, st.Attempts, st.Reason.Text(delivery.Sites))
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// ErrNotFound is returned for a lead id that is unknown, expired, or (for
// ForSite) another site's.
var ErrNotFound = errors.New("status: lead not found")

// ErrUnavailable is wrapped by every error that means Redis could not
// answer.
var ErrUnavailable = errors.New("status: lead store unavailable")

// Sources: what told the Reader where the lead is.
const (
	SourceTask   = "asynq task"
	SourceMarker = "delivered marker"
	SourceDead   = "dead-letter store (asynq no longer holds the task)"
)

// Status is where a lead is. Zero times are unknown or not applicable.
type Status struct {
	// ID is the lead id; Site the site that sent it.
	ID, Site string
	// State is where the lead is.
	State delivery.State
	// CRMID is the lead's id in the CRM once delivered (0 when unknown).
	CRMID int64
	// Attempts counts the runs that spent an attempt or ended the lead,
	// across re-runs by operators, the delivering run included.
	Attempts int
	// Reason is why the last run failed, for a Retrying or Dead lead;
	// the zero Reason otherwise.
	Reason delivery.Reason
	// ReceivedAt is when intake accepted the lead; UpdatedAt when
	// anything last happened to it.
	ReceivedAt, UpdatedAt time.Time
	// NextAttemptAt is when a Queued or Retrying lead runs next.
	NextAttemptAt time.Time
	// DeliveredAt and DeadAt are when it was delivered or died.
	DeliveredAt, DeadAt time.Time
	// Source names what told the Reader (Source*); TaskState is asynq's
	// own state of the task, "" when asynq no longer holds it.
	Source, TaskState string
	// Lead is the lead's fields where a task or dead letter still holds
	// them: personal data, for operators only.
	Lead *lead.Lead
	// Repeats counts the times the site sent the lead again without an
	// idempotency key within the keyless window: kept as this lead, not
	// delivered again (for operators; kept for LEADRELAY_DEDUP_TTL).
	Repeats int
	// Runs is the lead's timeline, oldest run first: every run of this
	// version's workers while the lead's records live (rdb.TimelineCap
	// at most). Sites read each run's time, End and reason code;
	// operators all of it.
	Runs []delivery.Run
}

// Reader answers status queries. It is safe for concurrent use; build it
// with New.
type Reader struct {
	queue string
	insp  *asynq.Inspector
	store *rdb.Store
	dead  *deadletter.Store
	codec lead.Codec
}

// New returns a Reader of leads of queue (lead.DefaultQueue when empty)
// on rc, which stays the caller's.
func New(rc redis.UniversalClient, queue string) *Reader {
	if queue == "" {
		queue = lead.DefaultQueue
	}
	return &Reader{queue: queue, insp: asynq.NewInspectorFromRedisClient(rc), store: rdb.New(rc), dead: deadletter.New(rc)}
}

// Opening returns a copy of r that opens sealed payloads with c, so
// Status.Lead holds the fields of a sealed lead too; without it only
// plaintext payloads show theirs.
func (r *Reader) Opening(c lead.Codec) *Reader {
	cp := *r
	cp.codec = c
	return &cp
}

// ForSite is where lead id is, as site sees it: ErrNotFound unless the
// lead is site's.
func (r *Reader) ForSite(ctx context.Context, site, id string) (Status, error) {
	if !validID(id) || site == "" {
		return Status{}, ErrNotFound
	}
	st, err := r.Lead(ctx, id)
	if err != nil {
		return Status{}, err
	}
	if st.Site != site {
		return Status{}, ErrNotFound
	}
	return st, nil
}

// Lead is where lead id is, whoever sent it (for operators).
func (r *Reader) Lead(ctx context.Context, id string) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	info, err := r.insp.GetTaskInfo(r.queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		info = nil
	case err != nil:
		return Status{}, unavailable(id, err)
	}
	a, err := r.store.ReadAttempt(ctx, id)
	if err != nil {
		return Status{}, unavailable(id, err)
	}
	st := Status{ID: id}
	if info == nil {
		err = r.withoutTask(ctx, &st, a)
	} else {
		err = r.fromTask(ctx, &st, info, a)
	}
	if err != nil {
		return Status{}, err
	}
	if st.Runs, err = r.store.Runs(ctx, id); err != nil {
		return Status{}, unavailable(id, err)
	}
	if st.Repeats, err = r.store.Repeats(ctx, id); err != nil {
		return Status{}, unavailable(id, err)
	}
	if st.State == delivery.Delivered || st.State == delivery.Queued {
		st.Reason = delivery.Reason{} // an earlier failure is history, not news
	}
	st.UpdatedAt = latest(st.ReceivedAt, st.UpdatedAt, st.DeliveredAt, st.DeadAt)
	return st, nil
}

// fromTask reads a lead asynq still holds.
func (r *Reader) fromTask(ctx context.Context, st *Status, info *asynq.TaskInfo, a rdb.Attempt) error {
	st.Source, st.TaskState = SourceTask, info.State.String()
	if env, err := lead.ReadEnvelope(info.Payload); err == nil && env.ID == st.ID {
		st.Site, st.ReceivedAt = env.Site, env.ReceivedAt
		if p, err := r.codec.Decode(info.Payload); err == nil {
			st.Lead = &p.Lead
		}
	}
	st.UpdatedAt = info.LastFailedAt
	// asynq counts a failure in Retried when it schedules the retry; the
	// run that killed or delivered the task is not counted there.
	st.Attempts, st.Reason = max(a.Runs, info.Retried), a.Reason
	switch info.State {
	case asynq.TaskStateRetry:
		st.State, st.NextAttemptAt = delivery.Retrying, info.NextProcessAt
		if st.Reason.IsZero() {
			st.Reason = delivery.Reason{Code: delivery.Unrecorded, Detail: info.LastErr}
		}
	case asynq.TaskStateArchived:
		st.State, st.DeadAt, st.Attempts = delivery.Dead, info.LastFailedAt, max(a.Runs, info.Retried+1)
		if err := r.withDeadLetter(ctx, st); err != nil {
			return err
		}
		if st.Reason.IsZero() {
			st.Reason = delivery.Reason{Code: delivery.Legacy, Detail: info.LastErr}
		}
	case asynq.TaskStateCompleted:
		st.State, st.DeliveredAt, st.Attempts = delivery.Delivered, info.CompletedAt, max(a.Runs, info.Retried+1)
		return r.withMarker(ctx, st, info.Result)
	default: // pending, scheduled, active, aggregating
		st.State, st.NextAttemptAt = delivery.Queued, info.NextProcessAt
	}
	return nil
}

// withoutTask reads a lead whose task asynq no longer holds (expired
// after its delivery, or trimmed from the archive): delivered if its
// marker says so, dead if the dead-letter store keeps it.
func (r *Reader) withoutTask(ctx context.Context, st *Status, a rdb.Attempt) error {
	rec, m, err := r.store.Lead(ctx, st.ID)
	if err != nil {
		return unavailable(st.ID, err)
	}
	if m != nil {
		st.State, st.Source, st.Attempts = delivery.Delivered, SourceMarker, max(a.Runs, 1)
		st.Site, st.ReceivedAt = m.Site, rec.At
		if st.Site == "" {
			st.Site = rec.Site
		}
		st.CRMID, st.DeliveredAt = m.CRMID, m.At
		return nil
	}
	st.Reason, st.Attempts = a.Reason, a.Runs
	if err := r.withDeadLetter(ctx, st); err != nil {
		return err
	}
	if st.State != delivery.Dead {
		return ErrNotFound
	}
	st.Source = SourceDead
	return nil
}

// withDeadLetter fills in what the dead-letter store keeps of a dead
// lead, if it keeps it.
func (r *Reader) withDeadLetter(ctx context.Context, st *Status) error {
	rec, err := r.dead.Get(ctx, st.ID)
	if errors.Is(err, deadletter.ErrNotFound) {
		return nil
	}
	if err != nil {
		return unavailable(st.ID, err)
	}
	st.State, st.DeadAt, st.Attempts = delivery.Dead, rec.DeadAt, max(st.Attempts, rec.Attempts)
	if st.Site == "" {
		st.Site, st.ReceivedAt = rec.Site, rec.ReceivedAt
	}
	if st.Reason.IsZero() {
		st.Reason = rec.Reason
	}
	if p, err := r.codec.Decode(rec.Payload); err == nil && st.Lead == nil {
		st.Lead = &p.Lead
	}
	return nil
}

// withMarker reads a delivered lead's CRM id and time from its marker,
// or from the task's result where the previous version wrote them.
func (r *Reader) withMarker(ctx context.Context, st *Status, result []byte) error {
	_, m, err := r.store.Lead(ctx, st.ID)
	if err != nil {
		return unavailable(st.ID, err)
	}
	if m != nil {
		st.CRMID, st.DeliveredAt = m.CRMID, m.At
		return nil
	}
	var old struct {
		CRMID int64 `json:"crm_id"`
	}
	if json.Unmarshal(result, &old) == nil {
		st.CRMID = old.CRMID
	}
	return nil
}

func unavailable(id string, err error) error {
	return fmt.Errorf("%w: status of lead %s: %w", ErrUnavailable, id, err)
}

// validID reports whether id has the shape of lead.ID: "ld_" and 24 hex
// digits.
func validID(id string) bool {
	hex, ok := strings.CutPrefix(id, "ld_")
	if !ok || len(hex) != 24 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
