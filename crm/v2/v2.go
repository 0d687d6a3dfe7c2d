// Package v2 is SalesMan's leads API v2 (developer/v2/lead) as a delivery
// run needs it. Every lead carries a uids stamp with the relay's lead id,
// which a look-up finds by scanning the CRM's list. v2's add is not
// atomic: it stores the lead, calls the CRM's webhooks, and only then
// writes the stamp, so a request that died in between leaves the lead
// without one; unstamped leads are therefore matched on their content.
package v2

import (
	"context"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// UIDKey is the name of the uids entry that stamps a CRM lead with the
// relay's lead id. The lead id, not the site's idempotency key, is
// stamped: it is short, stable, derived from site and key, and holds
// nothing a site chose.
const UIDKey = "leadrelay_key"

// API is v2. Build it with New; safe for concurrent use.
type API struct {
	env crm.Env
	top crm.Top // the highest CRM id any delivery recorded, as this process last read it
}

var _ crm.API = (*API)(nil)

// New returns v2 working with env.
func New(env crm.Env) *API { return &API{env: env} }

// Version is crmclient.V2.
func (*API) Version() crmclient.APIVersion { return crmclient.V2 }

// Caps: the watermark is the highest CRM id any delivery recorded, which
// bounds how deep a look-up pages.
func (*API) Caps() crm.Caps { return crm.Caps{DeliveredTop: true} }

// Add sends the lead stamped with its id.
func (a *API) Add(ctx context.Context, p lead.Payload) (int64, error) {
	return a.env.Client.Add(ctx, Lead(p))
}

// Lead is the lead as v2 sends it: stamped with the relay's lead id.
func Lead(p lead.Payload) crmclient.Lead {
	return crmclient.Lead{Lead: p.Lead, UIDs: map[string]string{UIDKey: p.ID}}
}

// LookUp scans the CRM's leads since the first send, down to the
// watermark, for the lead's stamp, or for its content in a lead without a
// stamp. A stamp of another lead never matches.
func (a *API) LookUp(ctx context.Context, p lead.Payload, at rdb.Attempt) (crm.Result, error) {
	want := crm.SentFingerprint(a.env.Client, Lead(p))
	return crm.Scan(ctx, a.env, crm.Since(p, at), at.Watermark, func(it crmclient.ListItem) (bool, error) {
		if key, stamped := it.UIDs[UIDKey]; stamped {
			return key == p.ID, nil
		}
		if crm.Fingerprint(it) != want {
			return false, nil
		}
		return crm.Claim(ctx, a.env.Store, it.ID, p.ID)
	})
}

// Preflight checks that stat answers (URL, login, key).
func (a *API) Preflight(ctx context.Context) (delivery.Reason, error) {
	return crm.CheckStat(ctx, a.env.Client)
}

// Watermark is the highest CRM id any delivery recorded, as this process
// last read it.
func (a *API) Watermark() int64 { return a.top.Load() }

// Saw raises the watermark to the delivered top Begin read; a send never
// waits.
func (a *API) Saw(b rdb.Begun) bool {
	a.top.Raise(b.CRMTop)
	return false
}

// CatchUp has nothing to do: Saw never holds a send back.
func (*API) CatchUp(context.Context) error { return nil }

// Resume has nothing to read: the first Begin reads the delivered top.
func (*API) Resume(context.Context) error { return nil }

// Refresh has no periodic bookkeeping to do.
func (*API) Refresh(context.Context) error { return nil }

// ReadBack pages through the CRM's newest leads down to floor, each with
// its stamp.
func (a *API) ReadBack(ctx context.Context, floor int64) (crm.ReadBack, error) {
	return crm.ReadPages(ctx, a.env.Client, floor, func(it crmclient.ListItem) string { return it.UIDs[UIDKey] })
}

// SentHash is the content hash of the lead as v2 sends it.
func (a *API) SentHash(p lead.Payload) string {
	return crm.FingerprintHash(crm.SentFingerprint(a.env.Client, Lead(p)))
}
