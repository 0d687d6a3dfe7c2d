// Package rdb is the one store of a lead's delivery state in Redis: every
// key (keys.go) and every script that changes that state, each method one
// round trip with a typed result, as asynq keeps its own in internal/rdb.
// The producer admits leads through it, the worker begins, settles and
// finishes deliveries through it, and status readers (producer, ctl) read
// it through it.
//
// A lead's keys share one hash tag, so its scripts are Redis Cluster safe;
// fleet-wide keys (the CRM circuit, claims, the v1 journal, backlog sets,
// counters) sit in slots of their own and are pipelined beside a lead's
// script, never inside it.
package rdb
