// Package crmsim simulates the SalesMan CRM leads API, v1 (developer/v1/leads)
// and v2 (developer/v2/lead), with the wire quirks of the real CRM: every
// answer is HTTP 200 with the error in the body, v1 returns numbers as strings
// and labels its JSON text/html, v1 decodes login/apikey/user twice, v2 reads
// JSON only for a Content-Type of exactly application/json (login/apikey then
// also as headers), a wrong key is 400 in v1 and 401 in v2, an empty list is
// error 404, an unknown id in v2 info answers a stub without data.id, and an
// add carrying an id rewrites that lead instead of inserting.
//
// A *Sim is an http.Handler. Tests mount it on httptest.NewServer; the
// stand-alone command `go run ./tools/crmsim` (Run) serves it with a
// Server, which can also refuse connections during an injected outage.
// Faults (errors, latency, outages, ambiguous adds, PHP fatals, the
// shipped-broken v1, auth failures, rejects, rate limits, and the running
// CRM's own behaviours listed below) are set with SetFaults, POST
// /_sim/faults or the crmsim flags, and drawn from a seeded random source,
// so a test run is repeatable.
//
//	sim, err := crmsim.New(crmsim.Config{APIKey: "secret"})
//	if err != nil { ... }
//	defer sim.Close()
//	ts := httptest.NewServer(sim)
//	// POST ts.URL+crmsim.PathV2: action=add&login=admin@example.com&apikey=secret&title=...
//	// then count what arrived with sim.Leads() or GET /_sim/leads.
//
// The admin endpoints under /_sim/ need no key: bind the standalone server
// to loopback (the default 127.0.0.1:9090).
//
// # Behaving like the running CRM
//
// These faults reproduce what the real CRM (2025.4 on PHP's built-in
// server and MariaDB) was seen doing; each is off by default.
//
//   - FatalStyle: PHP fatals as HTTP 500 with an empty body (display_errors
//     off, FatalEmpty500), or as the running CRM mixes them (FatalCRM: v1
//     empty 500, v2 the HTML page, since v2's lead.php turns display_errors
//     back on). With V1Shipped and FatalCRM, v1 add and info answer an empty
//     500 on every call and store nothing, while v1 stat and list work.
//   - V1ListIgnoresParams: v1 list always answers the newest 200, while v1
//     add works.
//   - StampGap, StampKillRate: v2 add stores the lead row first and writes
//     its uids after the gap; a killed add leaves the lead without them for
//     good. GET /_sim/leads?missing_uids=1 and Stats.MissingUIDs show such
//     leads.
//   - LateCommitRate, LateCommitDelay: an add that stores its lead after the
//     client has timed out.
//   - PHPWorkers (with WebhookStall, WebhookTime): a fixed pool of PHP
//     workers. Requests beyond it wait; a v2 add's call to the CRM's own
//     webhooks needs a worker too and waits up to 5 s while all are busy,
//     so more concurrent adds than workers collapse the throughput.
//   - CPUs: Latency as CPU time shared by the requests at work, so latency
//     grows with concurrency before the pool is full.
//
// The CRM that ../shared/realcrm/setup.sh stands up (PHP_WORKERS=8: 9
// serving processes, as PHP's master serves too) on a two-core machine is
// roughly the following; measured, it still served 9 concurrent adds and
// collapsed from 10 on, which a pool of 10 reproduces:
//
//	go run ./tools/crmsim --php-workers 10 --cpus 2 --latency 20ms --fatal-style crm --v1-shipped
//
// # Where the simulator differs from the real CRM on purpose
//
//   - v1 add, info and list work as the vendor page documents (list honours
//     offset, order, first, dateStart, dateEnd); the CRM as shipped today is
//     the V1Shipped fault. v2 list and stat keep the shipped date bugs
//     (dateStart alone matches nothing, dateEnd alone compares strings).
//   - v1 add answers the documented {"result":{"text":"Success","id":N}}
//     without the "mailresult" the running source adds; no e-mail is sent.
//   - v1 info of an unknown id answers the same stub as v2 (id as sent, as a
//     string); the real v1 answer for that case is not known.
//   - v2 wrong key answers 401 like the running CRM (its source says 400).
//   - A RejectMarker add fails with code 1 in both versions; the real v2
//     reports a failed insert with code 401 ("Ошибка добавления заявки").
//   - The responsible user comes from earlier leads with the same e-mail
//     (case-insensitive) or phone (same digits), not from client and contact
//     cards; there are no clients, contacts, deals or partners, so clid, pid,
//     did and partner are always 0 and their names null.
//   - Sources (clientpath) are found as the CRM's getClientpath does: by the
//     lead's utm_source first, then by name (case-blind), and made when none
//     is found and a name is given, even one an existing source has; a
//     number is a name. utm_source alone files under no source. v2 stores
//     the source's utm_source, not the request's. The store starts without
//     the CRM's installed sources (Маркетинг, …, fromfriend).
//   - datum is the same for v1 and v2 (the running CRM showed v2 three hours
//     later); both use Config.Clock in Config.Location.
//   - The API key compares exactly; MySQL would compare it case-insensitively.
//     Logins are case-insensitive, as in MySQL.
//   - Every active user counts in stat; the CRM counts only the lead
//     module's operators.
//   - v1 still fails the answer (PHP fatal, HTTP 200) when any parameter
//     holds ', after the action ran, as the CRM's unescaped API log does.
//   - An unknown order column answers a PHP fatal page, standing in for the
//     CRM's SQL error.
//   - PHP fatals are the HTML page with HTTP 200 unless FatalStyle says
//     otherwise; the running CRM answers v1 fatals with an empty HTTP 500.
//   - v2 add is atomic (uids stored with the row) unless StampGap,
//     StampKillRate or PHPWorkers is set. A killed add is dropped right after
//     its insert; on the CRM it dies somewhere in the webhook call. v1 add
//     makes no webhook call.
//   - The CRM's request time is Latency, a fixed sleep, not CPU time shared
//     by concurrent requests: without a PHP pool, concurrency costs nothing.
//   - In the PHP pool, a request whose client leaves while it waits for a
//     worker is dropped; the PHP server would still run it later. A webhook
//     call that gave up leaves the queue; on the CRM it still runs later.
//   - StampKillRate only drops the connection; it does not stop the other
//     requests in flight as a kill -9 of the PHP server does.
//   - The PHP pool collapses harder than the real server just past its
//     size: with as many concurrent adds as PHPWorkers every webhook call
//     waits out WebhookStall (about PHPWorkers adds per 5 s). The real CRM
//     with 9 serving processes still made 33-41 adds/s at 9 concurrent
//     adds, stalled a third of them at 10 (5.6-12.8 adds/s) and fell to
//     2-3 adds/s at 16.
//   - CPUs stretches a request's Latency by the load when it starts; it is
//     not re-shared as others come and go.
package crmsim
