// Package app wires LeadRelay's parts together for the leadrelay binary:
// logger, Redis (real or embedded), the CRM client (real or the in-process
// simulator), intake, worker, the ops UI and health endpoints. The cmd
// package parses arguments and calls into it; end-to-end tests do the same.
//
// A process has two listeners. The site-facing one (LEADRELAY_HTTP_ADDR)
// serves intake and health only. The ops one (LEADRELAY_OPS_ADDR, loopback
// by default) serves LeadRelay's page at / (internal/opspage), asynqmon at
// /ui/, /ops/* and /metrics behind OpsGuard: Host
// allow-list, cross-origin protection, a failed-login budget, basic auth
// and an audit line per action.
package app
