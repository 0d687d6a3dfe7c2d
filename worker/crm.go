package worker

import (
	"context"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

// CRM is what the worker needs of the CRM; *crmclient.Client implements it.
type CRM interface {
	// Add creates a lead; it is not idempotent.
	Add(ctx context.Context, l crmclient.Lead) (int64, error)
	// List returns one page of leads, newest first by default.
	List(ctx context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error)
	// Stat returns the CRM's per-user counts; the preflight uses it to
	// check URL, login and key.
	Stat(ctx context.Context) ([]crmclient.UserStat, error)
	// Info returns one lead; the v1 preflight uses it, since current
	// SalesMan releases break v1 info and add while stat works.
	Info(ctx context.Context, id int64) (crmclient.LeadInfo, error)
	// Sent returns a lead as the client sends it (after its sanitizing:
	// emoji stand-ins, v2's ip line), which is what the CRM then lists.
	Sent(l crmclient.Lead) crmclient.Lead
	// Version is the API version, which decides how a lead is stamped and
	// reconciled.
	Version() crmclient.APIVersion
}

var _ CRM = (*crmclient.Client)(nil)

// UIDKey is the name of the uids entry (v2) that stamps a CRM lead with the
// relay's lead id, so a reconcile can find it by scanning the list. The lead
// id, not the site's idempotency key, is stamped: it is short, stable,
// derived from site and key, and holds nothing a site chose.
const UIDKey = "leadrelay_key"

// crmLead converts the relay's lead into what the CRM's add takes.
func crmLead(p lead.Payload, v crmclient.APIVersion) crmclient.Lead {
	out := crmclient.Lead{Lead: p.Lead}
	if v == crmclient.V2 {
		out.UIDs = map[string]string{UIDKey: p.ID}
	}
	return out
}
