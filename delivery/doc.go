// Package delivery is the domain of a lead's delivery, without I/O: the
// states a lead's status reports, the states of its attempt record, why a
// run failed (a Reason: a typed Code and its parameters, rendered for
// sites, operators and chat from one table), what a failure means (an
// Outcome) and what becomes of the lead (Decide). The worker, the status
// query, the dead-letter store and notifications all speak it, so nothing
// decides anything by matching an error's text.
//
// # A lead
//
//	intake ─▶ Queued ─▶ a run ─┬─ added, or found by a look-up ─▶ Delivered
//	            ▲              └─ failed: (Outcome, Reason) ─▶ Decide
//	            │                     ┌─ Retry (spends an attempt) ◀──┤
//	            │                     ├─ Postpone (spends none) ◀─────┤
//	            │                     ▼                               └─ DeadLetter ─▶ Dead
//	            ├─ its time comes ◀─ Retrying                                           │
//	            └─ an operator re-runs it ◀─────────────────────────────────────────────┘
//
// A lead waiting for a retry or a postponement is Retrying; its status
// shows the Reason of its last failure to its site (Sites: short and
// generic) and to operators (Operators: precise, naming the setting to
// fix). A delivered lead shows none.
//
// # One run and its attempt record
//
// The attempt record (internal/rdb) is written ahead of every add, so a
// worker that dies, or an add without a clear answer, leaves the lead
// uncertain and the next run looks it up before it sends again:
//
//	Begin ──▶ AttemptSending ──add ok──▶ delivered marker
//	  ▲          │  ├─ a clear failure ─────▶ AttemptFailed ──▶ Decide
//	  │          │  └─ no clear answer ─────▶ AttemptUncertain ──▶ look-up
//	  │          │                               ├─ found ─▶ delivered
//	  │          │                               ├─ not found ─▶ AttemptSending
//	  │          │                               └─ too early, or it cannot
//	  │          │                                  tell ─▶ Postpone
//	  └─ Release ┘ (circuit open, limiter, busy lock: nothing was sent)
//
// # What a failure means
//
// An Outcome says what a failed run means; Decide turns it, with the
// attempts spent before the run and the retry budget, into a Verdict:
//
//	outcome        attempt < budget   attempt == budget   attempt > budget
//	Transient      Retry              DeadLetter          DeadLetter
//	Uncertain      Retry              DeadLetter          DeadLetter
//	Final          DeadLetter         DeadLetter          DeadLetter
//	Paused         Postpone           Postpone            DeadLetter
//	Backpressure   Postpone           Postpone            DeadLetter
//
// A lead that dies of a Final outcome keeps its Reason; one whose attempts
// are spent dies with RetriesExhausted, which names the last failure
// (DeathReason).
//
// # The spare run
//
// asynq archives a task whose failed run finds its retry count at its
// MaxRetry, whatever asynq.Config.IsFailure says of the error. With
// MaxRetry(budget), a postponement on a lead's last counted attempt would
// be archived behind LeadRelay's back, with no dead-letter record and no
// reason. So every task is enqueued with MaxRetry(budget+1)
// (lead.TaskOptions): counted attempts end at budget (Decide), and the
// spare run is there for postponements, which never spend it.
//
// An expired lease (a worker killed, stalled or cut off from Redis
// mid-run) is asynq's to handle: it cancels the run's context and runs
// the lead again (its recoverer, or the processor with ErrLeaseExpired).
// It is the worker's trouble, not the lead's, so its Outcome postpones
// (LeaseExpired) and spends no attempt: counted, it pushed a lead past
// its budget, where the next postponement dead-lettered it, and on the
// spare run the recoverer archived it with no record at all. The run that
// lost its lease gives no verdict (the worker's settle returns at once):
// asynq no longer reads it, and a dead letter from it named a lead the
// next run delivered. So a lead dies only by a Final outcome or its
// attempts spent; the third row, a postponement past the spare run, stays
// for a task whose retry count asynq raised some other way.
//
// Measured with asynq v0.26 (worker's TestSpareRun: 20 leads, each
// postponed once on its last counted attempt): with MaxRetry(budget), 20
// of 20 were archived by asynq, none with a dead-letter record, none
// delivered; with MaxRetry(budget+1), none archived, 20 delivered.
package delivery
