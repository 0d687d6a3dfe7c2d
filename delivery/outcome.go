package delivery

import "fmt"

// Outcome is what the end of a failed run means for its lead. Each Code
// has one (Code.Outcome). The zero value, None, is a run that did not
// fail.
type Outcome int

// The outcomes of a run.
const (
	// None: no failure; the lead is delivered (or was already).
	None Outcome = iota
	// Transient: nothing reached the CRM, or the CRM certainly stored
	// nothing; retry with backoff, spending an attempt.
	Transient
	// Uncertain: the CRM may have stored the lead; the next run looks it
	// up before it sends again. Spends an attempt.
	Uncertain
	// Final: retrying cannot help; the lead is dead now.
	Final
	// Paused: LeadRelay's CRM settings are wrong, not the lead; run again
	// later without spending an attempt.
	Paused
	// Backpressure: an open circuit, a rate limit, a busy lock, a look-up
	// that could not finish or LeadRelay's own Redis; run again later
	// without spending an attempt.
	Backpressure
)

// String returns the outcome's name, as logs and dead-letter records
// write it: "none", "retry", "uncertain", "dead", "pause" or
// "backpressure".
func (o Outcome) String() string {
	switch o {
	case None:
		return "none"
	case Transient:
		return "retry"
	case Uncertain:
		return "uncertain"
	case Final:
		return "dead"
	case Paused:
		return "pause"
	case Backpressure:
		return "backpressure"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Spends reports whether the outcome spends one of the lead's attempts.
func (o Outcome) Spends() bool { return o == Transient || o == Uncertain }

// Postpones reports whether the outcome runs the lead again without
// spending an attempt (asynq.Config.IsFailure reports no failure).
func (o Outcome) Postpones() bool { return o == Paused || o == Backpressure }

// Verdict is what becomes of a lead after a failed run. The zero value is
// no verdict.
type Verdict int

// The verdicts of Decide.
const (
	// Retry: run again after the backoff, the attempt spent.
	Retry Verdict = iota + 1
	// Postpone: run again after the failure's own delay, no attempt spent.
	Postpone
	// DeadLetter: the lead is dead; keep it in the dead-letter store with
	// its reason and tell asynq to archive it.
	DeadLetter
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Retry:
		return "retry"
	case Postpone:
		return "postpone"
	case DeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Decide is the one rule that ends a failed run. attempt is the number of
// attempts the lead spent before this run (asynq's retry count, from 0);
// budget is how many retries it may spend (LEADRELAY_MAX_RETRY), so a
// lead gets budget+1 counted attempts. A Final outcome is dead at once; a
// counted failure is retried until its attempts are spent; a postponement
// never spends an attempt and is dead only past the spare run (see the
// package doc), where asynq would archive it anyway. None, which is no
// failure, postpones.
func Decide(o Outcome, attempt, budget int) Verdict {
	switch {
	case o == Final:
		return DeadLetter
	case o.Spends() && attempt >= budget:
		return DeadLetter
	case o.Spends():
		return Retry
	case attempt > budget:
		return DeadLetter
	}
	return Postpone
}

// DeathReason is the reason a lead dies with after a run that failed for
// r with outcome o: r itself when o is Final, otherwise RetriesExhausted
// naming r as the last failure.
func DeathReason(o Outcome, r Reason) Reason {
	if o == Final {
		return r
	}
	return r.Exhausted()
}
