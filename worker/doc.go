// Package worker delivers lead tasks from asynq/Redis to the SalesMan CRM,
// so that every acknowledged lead ends up in the CRM exactly once, or in
// the dead-letter store with its reason, although the CRM's add is not
// idempotent and asynq runs a task at least once.
//
// The states a lead and its attempt record go through, what a failure
// means and the rule that ends a failed run are package delivery's (its
// doc draws them); internal/rdb is the only code that writes them. This
// package is the asynq server and the Handler: one run of a task, and how
// it ends.
//
// # A run
//
// A run begins with one round trip (rdb.Store.Begin): a delivered marker
// ends it as a duplicate, another worker's lock postpones it, and
// otherwise the lock is taken and the attempt record says "sending"
// before anything is sent (write-ahead). Then, each in a function of its
// own (handler.go): the CRM's API version may hold a send back until its
// look-up's bookkeeping caught up (crm.API.Saw), the record waits for
// replicas (WaitReplicas), a lease keeps the lock (lease.go), the fleet's
// circuit admits the call, an uncertain earlier add is looked up, and the
// Limiter admits the add and learns how the CRM coped. An add that got no
// clear answer makes the lead uncertain: a timeout or a lost connection
// (the CRM may still commit) is looked up once LEADRELAY_RECONCILE_AFTER
// has passed; an HTTP 500, 502 or error page (the request is over) is
// looked up at once, in the same run (lookup.go).
//
// The worker never asks which API version the CRM speaks. Package crm
// holds each version's behaviour behind crm.API: how a lead is added and
// stamped, how it is looked up (v2 by its uids stamp or its content, v1 in
// a journal of the CRM's newest leads, then by paging), the preflight,
// and the capabilities (crm.Caps) that shape a run. NewHandler refuses a
// version without a package there.
//
// # How it ends
//
// Every error a run returns means one thing, decided once: judge
// (judge.go) reads the worker's own errors, which carry a delivery.Reason,
// and a CRM call's error, which crmclient.Diagnose diagnosed where the
// call returned (judgedCRM). Every failed run ends in settle (settle.go),
// which asks delivery.Decide and does what it says: retry with backoff
// (the error itself; it spends an attempt), postpone (a *DelayError, which
// IsFailure reports as no failure, so asynq spends no attempt), or
// dead-letter (DeadLetters.Put, then asynq.SkipRetry). settle records the
// reason, and counts the run when it spent an attempt, in the lead's
// attempt record, where a status reads them.
//
// The CRM's health is a fleet fact (health.go): transient failures open a
// circuit shared in Redis; a configuration problem seen by any worker, or
// by the preflight a worker runs at start and every few minutes, opens it
// with the problem's reason recorded, so every worker pauses and every
// readiness check names the fix.
//
// A Worker is busy or idle (idle.go). Busy, it runs an asynq server that
// polls the queue every BusyPollInterval (50 ms). After a second without a
// task it shuts the server down and waits on the queue's wake channel,
// which the producer publishes to after each enqueue, looking for work it
// was not woken for once every PollInterval (5 s) and when a known retry
// falls due: an idle worker costs Redis about one command a second.
//
// # Poison leads
//
// A failure that follows its lead (the same lead fails again while the
// CRM works for others: rdb.CircuitLeadFault) is the lead's: it spends
// the lead's attempts and ends, with the budget spent, in the dead-letter
// store with its reason, but counts neither toward the circuit nor as a
// load signal for the Limiter. Its first failure, which nothing tells
// from the CRM's, counts once. An add's HTTP 500 or PHP error page is
// never a load signal (crmOutcome). The bound: a poison lead delays other
// leads only by the CRM slots its own requests hold, its budget+1 adds
// and their look-ups, never by a circuit cooldown or a cut limit; except
// that, while the circuit is open for other reasons, its failed probe
// reopens it like any other.
//
// Files, in the order a lead meets them: idle.go (busy and idle),
// handler.go (a run), lease.go (the lock it holds), lookup.go (look-ups,
// asking crm.API), judge.go (what an error means), settle.go (how it
// ends), health.go (the circuit and preflight), crm.go (the CRM as the API
// version reaches it), retry.go (delays), fleet.go (workers of the
// previous version), internal/rdb (state), and crmclient/errors.go
// (diagnosis).
//
//	o := app.WorkerOptions(cfg) // or worker.Options{...}: zero fields take the defaults
//	h, err := worker.NewHandler(crmClient, rdb, o, log)
//	w := worker.New(rdb, h, o, log)
//	err := w.Run(ctx) // until ctx is done, then graceful shutdown
package worker
