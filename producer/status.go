package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

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

// deliveredKey is the worker's marker, see docs/redis-keys.md.
func deliveredKey(id string) string { return "leadrelay:delivered:" + id }

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
		st.State, st.DeliveredAt = StateDelivered, info.CompletedAt
		st.Attempts++
		rec, ok := parseRecord(info.Result)
		if !ok || rec.CRMID == 0 {
			// The worker writes the marker before the result; read it when the result is missing.
			if m, err := p.marker(ctx, id); err == nil {
				rec, ok = m, true
			}
		}
		if ok {
			st.CRMID = int64(rec.CRMID)
			if st.DeliveredAt.IsZero() {
				st.DeliveredAt = time.Time(rec.At)
			}
		}
	default:
		st.State = StateQueued
	}
	st.UpdatedAt = latest(st.ReceivedAt, info.LastFailedAt, st.DeliveredAt)
	return st, nil
}

// fromMarker answers for a lead whose task has expired: delivered if the
// worker's marker says so and the lead is provably the site's.
func (p *Publisher) fromMarker(ctx context.Context, site, id string) (Status, error) {
	var owner *redis.StringCmd
	var mark *redis.StringCmd
	_, err := p.rdb.Pipelined(ctx, func(pp redis.Pipeliner) error {
		owner = pp.Get(ctx, ownerKey(id))
		mark = pp.Get(ctx, deliveredKey(id))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Status{}, fmt.Errorf("%w: status of lead %s: %w", ErrUnavailable, id, err)
	}
	raw, err := mark.Bytes()
	if err != nil {
		return Status{}, ErrNotFound
	}
	rec, ok := parseRecord(raw)
	if !ok {
		return Status{}, ErrNotFound
	}
	if o, _ := owner.Result(); o != site && rec.Site != site {
		return Status{}, ErrNotFound
	}
	at := time.Time(rec.At)
	return Status{ID: id, Site: site, State: StateDelivered, CRMID: int64(rec.CRMID), UpdatedAt: at, DeliveredAt: at}, nil
}

func (p *Publisher) marker(ctx context.Context, id string) (record, error) {
	raw, err := p.rdb.Get(ctx, deliveredKey(id)).Bytes()
	if err != nil {
		return record{}, err
	}
	if rec, ok := parseRecord(raw); ok {
		return rec, nil
	}
	return record{}, errors.New("producer: unreadable delivered marker")
}

// record is the worker's account of a delivery, in the task result and in
// the delivered marker: {"crm_id":123,"at":"RFC3339"}. Site is optional.
type record struct {
	CRMID flexInt  `json:"crm_id"`
	At    flexTime `json:"at"`
	Site  string   `json:"site"`
}

// parseRecord reads a record leniently: unknown fields, numbers as strings
// and a missing time are all fine; only non-JSON fails.
func parseRecord(b []byte) (record, bool) {
	var r record
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &r) != nil {
		return record{}, false
	}
	return r, true
}

// flexInt accepts 5, "5" and null.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil // lenient: an unreadable id is an unknown id
	}
	*f = flexInt(n)
	return nil
}

// flexTime accepts RFC 3339 strings and Unix seconds.
type flexTime time.Time

func (f *flexTime) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		*f = flexTime(t)
	} else if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		*f = flexTime(time.Unix(n, 0).UTC())
	}
	return nil
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
