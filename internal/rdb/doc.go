// Package rdb is the one store of a lead's delivery state in Redis: every
// key (keys.go) and every script (scripts/*.lua, one a file, loaded by
// scripts.go) that changes that state, each method one round trip with a
// typed result, as asynq keeps its own in internal/rdb. On a single
// primary the round trips of concurrent calls are shared (group.go: group
// commit), each script still whole and answering alone. The fleet's other
// state lives here too: the CRM circuit and limiter, intake's rate limits
// and replay set, the dead-letter store's keys and the worker registry.
// The producer admits leads through it, the worker begins, settles and
// finishes deliveries through it, and status readers (producer, ctl) read
// it through it.
//
// Every write of a lead's delivery state carries the run's fencing token
// and is refused (Fenced) once another run holds the lead (fence.go).
//
// A lead's keys share one hash tag, so its scripts are Redis Cluster safe;
// fleet-wide keys (the CRM circuit, claims, the v1 journal, backlog sets,
// counters) sit in slots of their own and are pipelined beside a lead's
// script, never inside it.
package rdb
