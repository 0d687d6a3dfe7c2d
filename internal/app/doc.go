// Package app wires LeadRelay's parts together for the leadrelay binary:
// logger, Redis (real or embedded), the CRM client (real or the in-process
// simulator), intake, worker, the ops UI and health endpoints. The cmd
// package parses arguments and calls into it; end-to-end tests do the same.
package app
