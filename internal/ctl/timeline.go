package ctl

import (
	"fmt"
	"strconv"
	"time"

	"leadrelay/delivery"
)

// opRun is one run of a lead as `ctl lead status` shows it to operators:
// all of its timeline entry, the reason in the operators' words.
type opRun struct {
	At         time.Time       `json:"at"`
	LastAt     time.Time       `json:"last_at,omitzero"`
	Repeats    int             `json:"repeats,omitempty"`
	Worker     string          `json:"worker,omitempty"`
	Outcome    delivery.RunEnd `json:"outcome"`
	ReasonCode delivery.Code   `json:"reason_code,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	CRMCode    int             `json:"crm_code,omitempty"`
	HTTPStatus int             `json:"http_status,omitempty"`
	CRMID      int64           `json:"crm_id,omitempty"`
	DurationMS int64           `json:"duration_ms"`
	Adds       int             `json:"adds,omitempty"`
	LookUps    int             `json:"look_ups,omitempty"`
	Fenced     bool            `json:"fenced,omitempty"`
}

// opRuns is a lead's timeline for operators.
func opRuns(runs []delivery.Run) []opRun {
	out := make([]opRun, 0, len(runs))
	for _, r := range runs {
		out = append(out, opRun{At: r.At, LastAt: r.LastAt, Repeats: r.Repeats, Worker: r.Worker, Outcome: r.End,
			ReasonCode: r.Reason.Code, Reason: r.Reason.Text(delivery.Operators), CRMCode: r.Reason.CRMCode,
			HTTPStatus: r.Reason.HTTPStatus, CRMID: r.CRMID, DurationMS: r.Duration.Milliseconds(),
			Adds: r.Adds, LookUps: r.LookUps, Fenced: r.Fenced})
	}
	return out
}

// printRuns writes a lead's timeline for people, one run a line.
func (c *cli) printRuns(runs []opRun) error {
	if len(runs) == 0 {
		return nil
	}
	fmt.Fprintf(c.out, "\nRuns (oldest first):\n")
	tw := c.table()
	fmt.Fprintf(tw, "  #\tBegan\tWorker\tOutcome\tCRM\tTook\tAdds\tLook-ups\tWhy\n")
	for i, r := range runs {
		outcome := string(r.Outcome)
		if r.Repeats > 0 {
			outcome += fmt.Sprintf(" ×%d until %s", r.Repeats+1, stamp(r.LastAt))
		}
		if r.Fenced {
			outcome += " (another run had taken the lead over)"
		}
		crm := "-"
		switch {
		case r.CRMID != 0:
			crm = "id " + strconv.FormatInt(r.CRMID, 10)
		case r.CRMCode != 0:
			crm = "code " + strconv.Itoa(r.CRMCode)
		case r.HTTPStatus != 0:
			crm = "HTTP " + strconv.Itoa(r.HTTPStatus)
		}
		why := "-"
		if r.ReasonCode != "" {
			why = string(r.ReasonCode) + ": " + clip(r.Reason, 160)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", i+1, stamp(r.At), sanitize(r.Worker), outcome, crm,
			(time.Duration(r.DurationMS) * time.Millisecond).String(), r.Adds, r.LookUps, why)
	}
	return tw.Flush()
}
