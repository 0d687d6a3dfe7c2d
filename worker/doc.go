// Package worker delivers lead tasks from asynq/Redis to the SalesMan CRM,
// aiming at exactly one CRM lead per acknowledged lead although the CRM's add
// is not idempotent and asynq runs a task at least once.
//
// A Handler processes lead.TaskType tasks: it checks the delivered marker
// (leadrelay:delivered:{lead id}) and takes a per-lead lock in one Redis
// round trip, reconciles with the CRM's list after an ambiguous attempt,
// calls CRM.Add and records the marker. Every error goes through one
// classification (classify) that decides between retry, retry without
// spending an attempt (*DelayError, see IsFailure), and dead letter
// (asynq.SkipRetry). A Worker wraps the asynq.Server. Options.Observer,
// when set, is told every CRM call, how each task ended and the circuit and
// configuration state (the metrics package implements it).
//
//	o := worker.OptionsFrom(cfg)
//	h := worker.NewHandler(crm, rdb, o, log)
//	w := worker.New(rdb, h, o, log)
//	err := w.Run(ctx) // until ctx is done, then graceful shutdown
package worker
