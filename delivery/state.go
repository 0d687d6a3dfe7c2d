package delivery

// State is where a lead is, as its status reports it to sites and
// operators. The zero value is no state (an unknown lead).
type State string

// The states of a lead.
const (
	// Queued: waiting for a worker, or being delivered.
	Queued State = "queued"
	// Retrying: a run failed or was postponed; another is scheduled.
	Retrying State = "retrying"
	// Delivered: the CRM has the lead.
	Delivered State = "delivered"
	// Dead: given up; the lead waits in the dead-letter store for an
	// operator.
	Dead State = "dead"
)

// AttemptState is the state of a lead's attempt record (internal/rdb).
// The zero value means no add was ever sent.
type AttemptState string

// The states of an attempt record.
const (
	// AttemptSending is written ahead of every add: a worker that dies,
	// or a delivered marker that cannot be written, leaves the lead
	// uncertain.
	AttemptSending AttemptState = "sending"
	// AttemptUncertain: an add got an answer that does not say whether
	// the CRM stored the lead; it is looked up before any resend.
	AttemptUncertain AttemptState = "uncertain"
	// AttemptFailed: the last add certainly stored nothing.
	AttemptFailed AttemptState = "failed"
)

// Uncertain reports whether an earlier add in this state may have stored
// the lead, so that it must be looked up before another add.
func (s AttemptState) Uncertain() bool { return s == AttemptSending || s == AttemptUncertain }
