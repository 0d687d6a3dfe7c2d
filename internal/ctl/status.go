package ctl

import (
	"errors"
	"fmt"
	"time"

	"leadrelay/delivery"
	"leadrelay/lead"
	"leadrelay/status"
)

// leadStatus is where one lead is, as package status answers, for
// operators: the reason in the operators' words, and what told us.
type leadStatus struct {
	ID            string         `json:"id"`
	State         delivery.State `json:"status"` // the HTTP API's name (GET /v1/leads/{id})
	Source        string         `json:"source"`
	TaskState     string         `json:"task_state,omitempty"`
	Site          string         `json:"site,omitempty"`
	CRMID         int64          `json:"crm_id,omitempty"`
	Attempts      int            `json:"attempts,omitempty"`
	Repeats       int            `json:"keyless_repeats,omitempty"`
	ReasonCode    delivery.Code  `json:"reason_code,omitempty"`
	Reason        string         `json:"reason,omitempty"`
	ReceivedAt    time.Time      `json:"received_at,omitzero"`
	NextAttemptAt time.Time      `json:"next_attempt_at,omitzero"`
	DeliveredAt   time.Time      `json:"delivered_at,omitzero"`
	DeadAt        time.Time      `json:"dead_at,omitzero"`
	Lead          *lead.Lead     `json:"lead,omitempty"`
	Runs          []opRun        `json:"runs"`
}

func (c *cli) leadStatus(args []string) error {
	fs := c.flags("lead status")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	if err := c.redisData(); err != nil {
		return err
	}
	st, err := status.New(c.rds.Client, c.cfg.Queue.Name).Opening(c.codec).Lead(c.ctx, pos[0])
	if errors.Is(err, status.ErrNotFound) {
		return &NotFoundError{What: "lead", ID: pos[0]}
	}
	if err != nil {
		return fmt.Errorf("lead %s: %w", pos[0], err)
	}
	ls := leadStatus{ID: st.ID, State: st.State, Source: st.Source, TaskState: st.TaskState, Site: st.Site,
		CRMID: st.CRMID, Attempts: st.Attempts, Repeats: st.Repeats, ReasonCode: st.Reason.Code, Reason: st.Reason.Text(delivery.Operators),
		ReceivedAt: st.ReceivedAt, NextAttemptAt: st.NextAttemptAt, DeliveredAt: st.DeliveredAt, DeadAt: st.DeadAt,
		Lead: st.Lead, Runs: opRuns(st.Runs)}
	if c.json {
		return c.emit(ls)
	}
	return c.printStatus(ls)
}

// printStatus writes a lead's status for people.
func (c *cli) printStatus(st leadStatus) error {
	tw := c.table()
	state := string(st.State)
	switch {
	case st.State == delivery.Delivered && st.CRMID != 0:
		state += fmt.Sprintf(" (CRM id %d)", st.CRMID)
	case st.State == delivery.Dead && st.Reason != "":
		state += ": " + clip(st.Reason, 200)
	}
	kvRow(tw, "Lead ID", st.ID)
	kvRow(tw, "State", state)
	kvRow(tw, "Known from", st.Source)
	kvRow(tw, "Site", st.Site)
	if st.Attempts > 0 {
		kvRow(tw, "Attempts", fmt.Sprint(st.Attempts))
	}
	if st.Repeats > 0 {
		kvRow(tw, "Keyless repeats", fmt.Sprintf("%d (sent again without a key within the keyless window: kept as this lead)", st.Repeats))
	}
	if st.State == delivery.Retrying {
		kvRow(tw, "Last failure", clip(st.Reason, 200))
	}
	for _, t := range []struct {
		k string
		v time.Time
	}{{"Received at", st.ReceivedAt}, {"Next attempt", st.NextAttemptAt}, {"Delivered at", st.DeliveredAt}, {"Dead at", st.DeadAt}} {
		if !t.v.IsZero() {
			kvRow(tw, t.k, stamp(t.v))
		}
	}
	if st.Lead != nil {
		leadRows(tw, st.Lead)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return c.printRuns(st.Runs)
}
