// Command bench measures LeadRelay against raw asynq references in one
// run, on a redis-server it starts itself (a free loopback port, a
// temporary data directory) and the in-process SalesMan simulator, so
// every figure comes with a ratio to a reference measured on the same
// machine a moment apart.
//
// Sections, in order:
//
//	intake    accepted leads/s and ack latency at C = 1, 8, 32 keep-alive clients:
//	          raw asynq Client.Enqueue, asynq behind a bare net/http handler,
//	          LeadRelay's intake (JSON API and SalesMan drop-in) as app.Run wires it
//	delivery  delivered leads/s at processes×concurrency 1×10, 1×40, 2×10:
//	          raw asynq no-op server, raw asynq server making the same
//	          crmclient.Add, LeadRelay's worker as app.Run wires it
//	workers   the peak resident memory of a worker process at 1×40: the relay
//	          binary's worker (built with go build) against tools/bench/rawworker,
//	          a raw asynq server making the same crmclient.Add
//	latency   delivery with 50 ms of CRM latency against the bound C/L
//	memory    Redis bytes per queued and per finished lead (INFO used_memory
//	          deltas with every client of the measured side closed)
//	light     ack → CRM latency p50/p99 at one lead every 50 ms, and the
//	          asynq poll interval sweep with the idle Redis load it costs
//	pool      delivered leads/s against crmsim's PHP pools: fixed caps and the defaults
//	real      the same against a real SalesMan (LEADRELAY_CRM_URL): best direct rate vs defaults
//	drain     5,000 leads queued while the CRM is down (30 s, HTTP 503), drained by
//	          2×10 defaults once it is back, against the best direct rate swept
//	          before and after (crmsim PHP pools 8 and 32); twice: a new fleet on
//	          an empty Redis, and a fleet that delivered 1,500 leads before the
//	          outage and restarted in it (Redis keeps its adaptive limit); the
//	          quick run's test asserts only that each lead reached the CRM once
//	real-drain the drain against the real CRM (LEADRELAY_CRM_URL)
//	rss       the bench process's resident memory
//
// Worker "processes" are asynq servers inside the bench process, each with
// its own Redis connection pool, so 2×10 measures two servers competing for
// one queue, not two operating-system processes.
//
// Quick mode runs every section with a few leads (a few seconds); the
// package's test runs it to prove the bench works, asserting no timing.
//
// It is a command of its own, not a subcommand of the relay, so the relay
// binary links none of the plot's gonum, x/image and PDF packages. From
// the module root:
//
//	go run ./tools/bench -h
//	go run ./tools/bench -quick
package main
