package delivery

import "time"

// RunEnd is how one run of a lead's delivery ended, as the lead's
// timeline records it. The zero value is no run.
type RunEnd string

// The ends of a run.
const (
	RunDelivered   RunEnd = "delivered"   // the CRM has the lead: added, or found by a look-up
	RunDuplicate   RunEnd = "duplicate"   // the lead was delivered already; nothing was sent
	RunRetry       RunEnd = "retry"       // failed, spending an attempt; another run follows
	RunPostponed   RunEnd = "postponed"   // put off without spending an attempt
	RunDead        RunEnd = "dead"        // the run ended the lead; it waits for an operator
	RunInterrupted RunEnd = "interrupted" // asynq ended the run (lease expired, deadline); it runs the lead again
)

// Run is one run of a lead's delivery, as the lead's timeline keeps it:
// what a site's status lists (its End and Reason.Code) and what operators
// read (all of it). Runs postponed again and again for the same reason (an
// outage) are one Run whose Repeats counts the others.
type Run struct {
	// At is when the run began; LastAt, with Repeats, when the last run it
	// stands for began.
	At, LastAt time.Time
	// Worker names the worker process that ran it (host:pid).
	Worker string
	// End is how it ended, and Reason why, for any end but RunDelivered
	// and RunDuplicate. The reason's CRMCode and HTTPStatus are what the
	// CRM answered.
	End    RunEnd
	Reason Reason
	// CRMID is the lead's id in the CRM, for RunDelivered.
	CRMID int64
	// Duration is how long the run took.
	Duration time.Duration
	// Adds counts the adds it sent, LookUps the look-ups it made.
	Adds, LookUps int
	// Fenced says another run had taken the lead over by the time this
	// one ended: its writes of the lead's state were refused.
	Fenced bool
	// Repeats counts the later runs, postponed for the same reason, this
	// one stands for.
	Repeats int
}
