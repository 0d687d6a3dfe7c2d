package crm

import (
	"context"

	"leadrelay/crmclient"
)

// Seen is one CRM lead as an audit reads it back.
type Seen struct {
	// CRMID is the CRM's id of the lead.
	CRMID int64
	// Stamp is the relay's lead id the lead carries (v2's uids), "" when
	// it carries none.
	Stamp string
	// Hash is FingerprintHash of its content as the CRM lists it, which
	// API.SentHash of the same lead equals.
	Hash string
}

// ReadBack is what an audit read back of the CRM's leads above a floor.
// Every CRM lead with From ≤ id ≤ To is in Leads; a lead outside that
// range may be missing from it without being missing from the CRM.
type ReadBack struct {
	// Leads are the CRM leads read, each once.
	Leads []Seen
	// From and To bound the CRM ids the read covers without a gap; From >
	// To when it covers nothing.
	From, To int64
}

// Covers reports whether the read holds every CRM lead of id crmID.
func (r ReadBack) Covers(crmID int64) bool { return r.From <= crmID && crmID <= r.To }

// ReadPages reads the CRM's list by id, newest first, page by page, down
// to the first lead at or below floor, at most maxScanPages pages (10,000
// leads). stamp tells the relay's lead id a listed lead carries. Leads
// that arrive meanwhile push older ones to later pages, so a lead may be
// listed twice but none is skipped. A CRM that ignores paging (v1 as
// shipped) covers its first page only.
//
// The order is the id's, not the CRM's default datum: datum has whole
// seconds, and the CRM lists the leads of one second in ascending ids,
// so by datum a lead at the floor came before newer ones of its second
// and ended the read above them (the real CRM: two delivered leads taken
// for missing).
func ReadPages(ctx context.Context, c Client, floor int64, stamp func(crmclient.ListItem) string) (ReadBack, error) {
	rb := ReadBack{From: 1, To: 0}
	seen := map[int64]bool{}
	o := crmclient.ListOptions{Order: "id", First: "new"}
	var prevFirst int64 = -1
	for page := 0; page < maxScanPages; page++ {
		o.Page = page
		items, err := c.List(ctx, o)
		if err != nil {
			return ReadBack{From: 1}, err
		}
		if len(items) > 0 && items[0].ID == prevFirst {
			if ignored, err := offsetIgnored(ctx, c, o); err != nil || ignored {
				return rb, err
			}
		}
		for _, it := range items {
			rb.To = max(rb.To, it.ID)
			if it.ID <= floor {
				rb.From = floor + 1
				return rb, nil
			}
			if !seen[it.ID] {
				seen[it.ID] = true
				rb.Leads = append(rb.Leads, Seen{CRMID: it.ID, Stamp: stamp(it), Hash: FingerprintHash(Fingerprint(it))})
			}
			rb.From = it.ID
		}
		if len(items) < crmclient.PageSize {
			rb.From = floor + 1
			return rb, nil
		}
		prevFirst = items[0].ID
	}
	return rb, nil
}
