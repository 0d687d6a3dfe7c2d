// Package worker delivers lead tasks from asynq/Redis to the SalesMan CRM,
// so that every acknowledged lead ends up in the CRM exactly once, or in
// the dead-letter store with its reason, although the CRM's add is not
// idempotent and asynq runs a task at least once.
//
// # The delivery state machine
//
// One lead's delivery state lives in internal/rdb (the only code that
// writes it): the task itself while it is queued (intake writes no record
// of its own, only a count in its site's backlog), an attempt record whose
// state is one of the rdb.State* constants, a lock, and the delivered
// marker. Each run of
// a task (Handler.ProcessTask) moves it like this:
//
//	admitted ──Begin──▶ sending ──add ok──▶ delivered (marker; Finish)
//	   ▲                  │  ├─ transient / config / rejected ──▶ failed ──▶ retry | paused | dead
//	   │                  │  └─ no clear answer ──▶ uncertain ──▶ look-up ──▶ delivered (found)
//	   │                  │                              │                  └▶ sending (not found)
//	   └── Release ◀──────┘ (circuit open, limiter,      └ too early / CRM down ──▶ postponed
//	       (unsend)          busy lock: nothing sent)
//
// A run begins with one round trip (rdb.Store.Begin): a delivered marker
// ends it as a duplicate, another worker's lock postpones it, and
// otherwise the lock is taken and the attempt record says "sending"
// before anything is sent (write-ahead). An add that got no clear answer
// makes the lead uncertain: a timeout or a lost connection (the CRM may
// still commit) is looked up once LEADRELAY_RECONCILE_AFTER has passed;
// an HTTP 500, 502 or error page (the request is over) is looked up at
// once, in the same run. The look-up (reconcile.go) finds the lead by its
// v2 uids stamp, or by content where the stamp is missing (v2 stamps after
// its webhooks) and on v1, claiming the CRM id so two identical leads
// never share one; on v1 it reads the journal of the CRM's newest leads
// first (journal.go), because the shipped v1 list shows only the newest
// 200.
//
// Every failed run ends in settle (settle.go), the one place that decides
// what asynq does: retry with backoff (spends an attempt), postpone
// without spending one (*DelayError: backpressure, a configuration pause),
// or dead-letter (DeadLetters.Put, then asynq.SkipRetry). Errors are
// classified once, by crmclient.Classify; outcomeOf maps classes to
// outcomes. Tasks carry one run more than their retry budget
// (lead.TaskOptions), and settle keeps that run for postponements, so
// asynq never archives a lead behind LeadRelay's back.
//
// The CRM's health is a fleet fact (health.go): transient failures open a
// circuit shared in Redis; a configuration problem seen by any worker, or
// by the preflight a worker runs at start and every few minutes, opens it
// with the problem recorded, so every worker pauses and every readiness
// check names the fix.
//
// Files, in the order a lead meets them: handler.go (a run), settle.go
// (how it ends), reconcile.go and journal.go (look-ups), health.go (the
// circuit and preflight), retry.go (delays), internal/rdb (state), and
// crmclient/errors.go (classification).
//
//	o := worker.OptionsFrom(cfg)
//	h := worker.NewHandler(crm, rdb, o, log)
//	w := worker.New(rdb, h, o, log)
//	err := w.Run(ctx) // until ctx is done, then graceful shutdown
package worker
