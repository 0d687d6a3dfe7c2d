package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/lead"
)

// States a lead can be in, as Status reports them.
const (
	StateQueued    = "queued"    // waiting for a worker, or being delivered
	StateRetrying  = "retrying"  // a delivery failed; another attempt is scheduled
	StateDelivered = "delivered" // the CRM has it
	StateDead      = "dead"      // given up; waits in the dead-letter queue for an operator
)

// Status is where a lead is. Zero times are unknown or not applicable.
type Status struct {
	ID    string
	Site  string
	State string // StateQueued, StateRetrying, StateDelivered or StateDead
	// CRMID is the lead's id in the CRM once delivered, 0 before (or when
	// the worker did not record it).
	CRMID int64
	// Attempts counts finished delivery attempts.
	Attempts int
	// LastError is the last failure's message, "" if none.
	LastError     string
	ReceivedAt    time.Time
	UpdatedAt     time.Time
	NextAttemptAt time.Time
	DeliveredAt   time.Time
}

// Status returns the state of lead id as site sees it. It returns ErrNotFound
// when the id is unknown, has expired, or belongs to another site, and an
// error wrapping ErrUnavailable when Redis cannot answer.
func (p *Publisher) Status(ctx context.Context, site, id string) (Status, error) {
	if !validID(id) || site == "" {
		return Status{}, ErrNotFound
	}
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	info, err := p.insp.GetTaskInfo(p.o.Queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return p.fromMarker(ctx, site, id)
	case err != nil:
		return Status{}, fmt.Errorf("%w: status of lead %s: %w", ErrUnavailable, id, err)
	}
	pl, err := lead.ParsePayload(info.Payload)
	if err != nil || pl.Site != site || pl.ID != id {
		return Status{}, ErrNotFound
	}
	st := Status{ID: id, Site: site, ReceivedAt: pl.ReceivedAt, LastError: info.LastErr, Attempts: info.Retried}
	// asynq counts a failure in Retried when it schedules the retry; the
	// final attempt of a dead or delivered task is not counted there.
	switch info.State {
	case asynq.TaskStatePending, asynq.TaskStateScheduled, asynq.TaskStateActive, asynq.TaskStateAggregating:
		st.State, st.NextAttemptAt = StateQueued, info.NextProcessAt
	case asynq.TaskStateRetry:
		st.State, st.NextAttemptAt = StateRetrying, info.NextProcessAt
	case asynq.TaskStateArchived:
		st.State = StateDead
		st.Attempts++
	case asynq.TaskStateCompleted:
		// The lead is in the CRM: an earlier failure is history, not news.
		st.State, st.DeliveredAt, st.LastError = StateDelivered, info.CompletedAt, ""
		st.Attempts++
		if _, m, err := p.store.Lead(ctx, id); err == nil && m != nil {
			st.CRMID, st.DeliveredAt = m.CRMID, m.At
		}
	default:
		st.State = StateQueued
	}
	st.UpdatedAt = latest(st.ReceivedAt, info.LastFailedAt, st.DeliveredAt)
	return st, nil
}

// fromMarker answers for a lead whose task has expired: delivered if the
// delivered marker says so and the lead is provably the site's.
func (p *Publisher) fromMarker(ctx context.Context, site, id string) (Status, error) {
	rec, m, err := p.store.Lead(ctx, id)
	if err != nil {
		return Status{}, fmt.Errorf("%w: status of lead %s: %w", ErrUnavailable, id, err)
	}
	if m == nil || (rec.Site != site && m.Site != site) {
		return Status{}, ErrNotFound
	}
	return Status{ID: id, Site: site, State: StateDelivered, CRMID: m.CRMID, ReceivedAt: rec.At,
		UpdatedAt: m.At, DeliveredAt: m.At}, nil
}

// validID reports whether id has the shape of lead.ID: "ld_" and 24 hex digits.
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
