// Package erasure removes a person's leads from every store LeadRelay
// keeps in Redis, on request (GDPR art. 17, 152-FZ art. 21): `leadrelay
// ctl lead erase` and the ops listener's POST /ops/erase call it.
//
// For each lead it deletes asynq's task in whatever state it is (pending,
// scheduled, retry, archived, completed; a running one, asynq's active
// state, once its run ends: see Options.Wait), the dead-letter record and
// its history, the attempt record, the timeline of runs, the keyless
// identity and the poison bookkeeping. It keeps the delivered marker
// (site, CRM id, time and a prefix of the content digest, no field of
// the lead), because without it a repeat of a delivered lead would be
// delivered again, and the CRM id's claim (a CRM id and a lead id). It
// cannot reach the CRM, which holds what was delivered, nor Redis's
// replicas' and backups' older files. Every erasure writes one audit log
// line with the lead ids and counts, never the person's data.
//
//	e := erasure.New(rc, erasure.Options{Queue: "leads", Codec: codec, Log: log})
//	rep, err := e.Erase(ctx, erasure.Query{Email: "ann@example.org", By: "ctl"})
package erasure
