package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// States `lead status` reports.
const (
	StateQueued    = "queued"
	StateRetrying  = "retrying"
	StateDelivered = "delivered"
	StateDead      = "dead"
)

// leadStatus is where one lead is. Source names what told us.
type leadStatus struct {
	ID            string     `json:"id"`
	State         string     `json:"status"` // the HTTP API's name (GET /v1/leads/{id})
	Source        string     `json:"source"`
	TaskState     string     `json:"task_state,omitempty"`
	Site          string     `json:"site,omitempty"`
	CRMID         int64      `json:"crm_id,omitempty"`
	Attempts      int        `json:"attempts,omitempty"`
	Reason        string     `json:"reason,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	ReceivedAt    time.Time  `json:"received_at,omitzero"`
	NextAttemptAt time.Time  `json:"next_attempt_at,omitzero"`
	DeliveredAt   time.Time  `json:"delivered_at,omitzero"`
	DeadAt        time.Time  `json:"dead_at,omitzero"`
	Lead          *lead.Lead `json:"lead,omitempty"`
}

// deliveryRecord is the worker's record of a delivery, in the task result of
// the previous version and in the delivered marker (internal/rdb).
type deliveryRecord struct {
	CRMID       int64     `json:"crm_id"`
	At          time.Time `json:"at"`
	DeliveredAt time.Time `json:"delivered_at"`
}

func (d deliveryRecord) when() time.Time {
	if !d.At.IsZero() {
		return d.At
	}
	return d.DeliveredAt
}

func (c *cli) leadStatus(args []string) error {
	fs := c.flags("lead status")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("lead status", pos, 1); err != nil {
		return err
	}
	if err := c.redis(); err != nil {
		return err
	}
	st, err := c.status(pos[0])
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(st)
	}
	tw := c.table()
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	state := st.State
	switch {
	case st.State == StateDelivered && st.CRMID != 0:
		state += fmt.Sprintf(" (CRM id %d)", st.CRMID)
	case st.State == StateDead && st.Reason != "":
		state += ": " + st.Reason
	}
	kv("Lead ID", st.ID)
	kv("State", state)
	kv("Known from", st.Source)
	kv("Site", st.Site)
	if st.Attempts > 0 {
		kv("Attempts", fmt.Sprint(st.Attempts))
	}
	kv("Last error", clip(st.LastError, 200))
	for _, t := range []struct {
		k string
		v time.Time
	}{{"Received at", st.ReceivedAt}, {"Next attempt", st.NextAttemptAt}, {"Delivered at", st.DeliveredAt}, {"Dead at", st.DeadAt}} {
		if !t.v.IsZero() {
			kv(t.k, stamp(t.v))
		}
	}
	if st.Lead != nil {
		for _, f := range lead.Fields() {
			if v := *f.Of(st.Lead); v != "" {
				kv("  "+f.Name, clip(v, 200))
			}
		}
	}
	return tw.Flush()
}

// status finds lead id: its asynq task first, then the delivered marker,
// then the dead-letter store.
func (c *cli) status(id string) (leadStatus, error) {
	st := leadStatus{ID: id}
	marker := func() (*deliveryRecord, error) {
		_, m, err := rdb.New(c.rds.Client).Lead(c.ctx, id)
		if err != nil {
			return nil, fmt.Errorf("delivered marker of %s: %w", id, err)
		}
		if m == nil {
			return nil, nil
		}
		return &deliveryRecord{CRMID: m.CRMID, At: m.At}, nil
	}
	stored := func() (*deadletter.Record, error) {
		r, err := c.dead.Get(c.ctx, id)
		if errors.Is(err, deadletter.ErrNotFound) {
			return nil, nil
		}
		return &r, err
	}

	info, err := c.insp.GetTaskInfo(c.cfg.Queue.Name, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		if d, err := marker(); err != nil || d != nil {
			if d != nil {
				st.State, st.Source, st.CRMID, st.DeliveredAt = StateDelivered, "delivered marker", d.CRMID, d.when()
			}
			return st, err
		}
		r, err := stored()
		if err != nil {
			return st, err
		}
		if r == nil {
			return st, &NotFoundError{What: "lead", ID: id}
		}
		st.Source = "dead-letter store (asynq no longer holds the task)"
		st.fromRecord(r)
		return st, nil
	case err != nil:
		return st, fmt.Errorf("lead %s: %w", id, err)
	}

	st.Source, st.TaskState, st.LastError, st.Attempts = "asynq task", info.State.String(), info.LastErr, info.Retried
	if p, err := lead.ParsePayload(info.Payload); err == nil {
		st.Site, st.ReceivedAt, st.Lead = p.Site, p.ReceivedAt, &p.Lead
	}
	switch info.State {
	case asynq.TaskStateRetry:
		st.State, st.NextAttemptAt = StateRetrying, info.NextProcessAt
	case asynq.TaskStateArchived:
		st.State, st.Reason, st.DeadAt, st.Attempts = StateDead, info.LastErr, info.LastFailedAt, info.Retried+1
		r, err := stored()
		if err != nil {
			return st, err
		}
		if r != nil {
			st.fromRecord(r)
		}
	case asynq.TaskStateCompleted:
		st.State, st.DeliveredAt, st.Attempts = StateDelivered, info.CompletedAt, info.Retried+1
		var d deliveryRecord
		if json.Unmarshal(info.Result, &d) == nil && d.CRMID != 0 {
			st.CRMID = d.CRMID
		} else if m, err := marker(); err != nil {
			return st, err
		} else if m != nil {
			st.CRMID = m.CRMID
		}
	default: // pending, scheduled, active, aggregating
		st.State, st.NextAttemptAt = StateQueued, info.NextProcessAt
	}
	return st, nil
}

func (st *leadStatus) fromRecord(r *deadletter.Record) {
	st.State, st.Reason, st.Attempts, st.DeadAt = StateDead, r.Reason, r.Attempts, r.DeadAt
	st.Site, st.ReceivedAt = r.Site, r.ReceivedAt
	if len(r.Errors) > 0 {
		st.LastError = r.Errors[len(r.Errors)-1].Text
	}
	if p, err := lead.ParsePayload(r.Payload); err == nil {
		st.Lead = &p.Lead
	}
}
