// Package audit checks the relay's promise from the CRM's side. Every
// LEADRELAY_AUDIT_INTERVAL one worker of the fleet reads the leads the
// relay delivered within LEADRELAY_AUDIT_WINDOW (asynq keeps a delivered
// task, with its CRM id as its result, for LEADRELAY_DEDUP_TTL), reads
// back the CRM's leads since the oldest of them (crm.API.ReadBack: v2's
// list pages with their uids stamps, v1's journal of the CRM's newest
// leads), and reports
//
//   - a duplicate: a CRM lead that is not the one the relay recorded for
//     a lead, yet carries that lead's stamp (found at once), or its
//     content (found when still unexplained Settle after it was first
//     seen, so an add being recorded is not taken for one);
//   - a missing lead: a delivered lead whose CRM id the read covers but
//     the CRM does not list (deleted there, or never made).
//
// Each find is counted, logged and notified once (the fleet keeps them in
// Redis), and the latest report is kept for `ctl audit` and the ops
// listener's /readyz. The cost is bounded: pages of delivered tasks and
// of CRM leads, never more than the window holds, once per interval.
//
//	a := audit.New(api, rc, audit.Options{Queue: "leads", Codec: codec})
//	go a.Loop(ctx)
package audit
