// Package chaos holds LeadRelay's chaos suite: a test that runs the real
// binary as separate processes (redis-server with AOF, the CRM simulator, one
// intake, three workers), publishes thousands of leads through both intake
// APIs while it injects CRM errors, ambiguous adds, an outage, kill -9 of
// workers and a Redis restart, and then proves that every acknowledged lead
// reached the CRM exactly once or sits in the dead-letter store with its
// reason. It is skipped by `go test -short`.
package chaos
