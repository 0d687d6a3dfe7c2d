package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// reconcileResult is what a look-up at the CRM found.
type reconcileResult int

const (
	reconcileNotFound reconcileResult = iota // the CRM certainly lacks the lead: send it
	reconcileFound                           // the CRM has it: record it as delivered
	reconcileUnknown                         // cannot tell: Options.ReconcileUnknown decides
)

func (r reconcileResult) String() string {
	switch r {
	case reconcileFound:
		return "found"
	case reconcileNotFound:
		return "not_found"
	}
	return "unknown"
}

// Reconcile bounds.
const (
	// dateMargin widens date filters: the CRM's dates are its server's
	// local time, off by hours between v1 and v2.
	dateMargin = 24 * time.Hour
	// maxReconcilePages bounds a scan (200 leads a page).
	maxReconcilePages = 50
	// reconcileSettle is added to CRMTimeout for the least ReconcileAfter,
	// so the earlier request cannot still be in flight on our side.
	reconcileSettle = time.Second
)

// reconcile finds out whether an earlier, uncertain add stored the lead.
// A CRM lead matched by content is claimed for this lead (rdb ClaimsKey),
// so two genuine identical leads never map to one CRM lead.
func (h *Handler) reconcile(ctx context.Context, p lead.Payload, a rdb.Attempt) (int64, reconcileResult, error) {
	first := a.FirstAt
	if first.IsZero() {
		first = p.ReceivedAt
	}
	if !h.v1() {
		return h.reconcileV2(ctx, p, a, first)
	}
	return h.reconcileV1(ctx, p, a, first)
}

// reconcileV2 looks for the lead's uids stamp. v2's add is not atomic: it
// stores the lead, calls the CRM's webhooks, and only then writes the
// stamp, so a request that died in between leaves the lead without one.
// Unstamped leads are therefore matched on their content as on v1.
func (h *Handler) reconcileV2(ctx context.Context, p lead.Payload, a rdb.Attempt, first time.Time) (int64, reconcileResult, error) {
	want := h.sentFingerprint(p)
	return h.scan(ctx, first, a.Watermark, func(it crmclient.ListItem) (bool, error) {
		if key, stamped := it.UIDs[UIDKey]; stamped {
			return key == p.ID, nil
		}
		if fingerprint(it.Email, it.Phone, it.Company, it.Content) != want {
			return false, nil
		}
		return h.claim(ctx, it.ID, p.ID)
	})
}

// reconcileV1 matches on email, phone, company and content (v1 has no
// uids). It looks in the journal of the CRM's newest leads first: the
// shipped v1 list ignores every parameter and shows only the newest 200,
// so a lead may scroll off before a scan could find it, but not off the
// journal, which the fleet refreshes every journalRefreshEvery sends. Where
// the journal has a gap since the lead's first send, it scans pages.
func (h *Handler) reconcileV1(ctx context.Context, p lead.Payload, a rdb.Attempt, first time.Time) (int64, reconcileResult, error) {
	fp := h.sentFingerprint(p)
	if j, err := h.refreshJournal(ctx); err != nil {
		return 0, reconcileUnknown, err
	} else if j.Covers(a.Watermark) {
		items, j, err := h.store.JournalRead(ctx, a.Watermark)
		if err != nil {
			return 0, reconcileUnknown, storeErr("read CRM journal", err)
		}
		if j.Covers(a.Watermark) {
			h.stats.journal.Add(1)
			sort.Slice(items, func(i, k int) bool { return items[i].CRMID < items[k].CRMID })
			want := fingerprintHash(fp)
			for _, it := range items {
				if it.Fingerprint != want {
					continue
				}
				if ok, err := h.claim(ctx, it.CRMID, p.ID); err != nil || ok {
					return it.CRMID, reconcileFound, err
				}
			}
			return 0, reconcileNotFound, nil
		}
	} else {
		h.log.Info("reconcile: the CRM journal has a gap since the lead's first send; scanning list pages",
			zap.String("lead_id", p.ID), zap.Int64("watermark", a.Watermark), zap.Int64("journal_from", j.From), zap.Int64("journal_max", j.Max))
	}
	return h.scan(ctx, first, a.Watermark, func(it crmclient.ListItem) (bool, error) {
		if fingerprint(it.Email, it.Phone, it.Company, it.Content) != fp {
			return false, nil
		}
		return h.claim(ctx, it.ID, p.ID)
	})
}

// sentFingerprint is the fingerprint of the lead as the CRM received it:
// the client may have changed it on the way (emoji stand-ins, v2's ip
// line), and the CRM lists what it received.
func (h *Handler) sentFingerprint(p lead.Payload) string {
	l := h.crm.Sent(crmLead(p, h.crm.Version()))
	return fingerprint(l.Email, l.Phone, l.Company, l.Description)
}

// claim claims a CRM id matched by content for lead id: true when it is
// free, or this lead's already (an earlier look-up whose delivery was not
// recorded).
func (h *Handler) claim(ctx context.Context, crmID int64, id string) (bool, error) {
	ok, err := h.store.Claim(ctx, crmID, id, claimedRetention)
	if err != nil {
		return false, storeErr("claim CRM id", err)
	}
	return ok, nil
}

// scan walks the CRM's leads newest first, created since the first attempt
// (both dates set: one alone is broken on the real CRM; a day's margin for
// the CRM's local time), until match finds the lead, the leads get older
// than the first attempt, or the pages end. New leads arriving meanwhile
// only push older ones to later pages, so none is skipped. A CRM that
// ignores paging (v1 as shipped answers the newest 200 whatever is asked)
// or more than maxReconcilePages pages make the answer unknown. floor,
// when known (> 0), is the highest CRM id recorded before the first send:
// a page holding only ids up to it ends the scan, since every lead from
// there on is older than the lead looked for.
func (h *Handler) scan(ctx context.Context, first time.Time, floor int64, match func(crmclient.ListItem) (bool, error)) (int64, reconcileResult, error) {
	cutoff := first.Add(-dateMargin)
	o := crmclient.ListOptions{First: "new", DateStart: cutoff, DateEnd: h.o.Clock().Add(dateMargin)}
	var prevFirst int64 = -1
	for page := 0; page < maxReconcilePages; page++ {
		o.Page = page
		items, err := h.listPage(ctx, o)
		if err != nil {
			return 0, reconcileUnknown, err
		}
		if len(items) > 0 && items[0].ID == prevFirst {
			// Either the CRM ignores the offset, or exactly a page of new
			// leads arrived since the last page. Ask a page far beyond
			// the end to tell which: only a CRM that ignores it answers.
			ignored, err := h.offsetIgnored(ctx, o)
			if err != nil {
				return 0, reconcileUnknown, err
			}
			if ignored {
				return 0, reconcileUnknown, nil
			}
			h.log.Info("reconcile: a full page of new leads arrived between two list pages; the CRM pages, the scan goes on",
				zap.Int("page", page))
		}
		for _, it := range items {
			if !it.Datum.Time.IsZero() && it.Datum.Time.Before(cutoff) {
				return 0, reconcileNotFound, nil
			}
			ok, err := match(it)
			if err != nil {
				return 0, reconcileUnknown, err
			}
			if ok {
				return it.ID, reconcileFound, nil
			}
		}
		if len(items) < crmclient.PageSize || floor > 0 && allUpTo(items, floor) {
			return 0, reconcileNotFound, nil
		}
		prevFirst = items[0].ID
	}
	return 0, reconcileUnknown, nil
}

// allUpTo reports whether every item's CRM id is at most floor.
func allUpTo(items []crmclient.ListItem, floor int64) bool {
	for _, it := range items {
		if it.ID > floor {
			return false
		}
	}
	return true
}

// probePage is a page number far beyond any CRM's leads within a scan's
// date range.
const probePage = 1 << 20

// offsetIgnored reports whether the CRM answers leads for a page that
// cannot exist, i.e. ignores the offset (v1 as shipped).
func (h *Handler) offsetIgnored(ctx context.Context, o crmclient.ListOptions) (bool, error) {
	o.Page = probePage
	items, err := h.listPage(ctx, o)
	return len(items) > 0, err
}

// listPage fetches one page, trying a transient failure twice more after a
// short pause: a scan of many pages through a flaky CRM would otherwise
// rarely finish.
func (h *Handler) listPage(ctx context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error) {
	var err error
	for try := 0; try < 3; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(time.Duration(try*try) * 100 * time.Millisecond):
			}
		}
		var items []crmclient.ListItem
		if items, err = h.list(ctx, o); err == nil || judge(err).class != crmclient.ClassTransient {
			return items, err
		}
	}
	return nil, err
}

// list fetches one page through the Limiter: a reconcile is a CRM request
// like any other.
func (h *Handler) list(ctx context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error) {
	done, err := h.acquireCRM(ctx)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, h.o.CRMTimeout)
	defer cancel()
	items, err := h.crm.List(lctx, o)
	done(err)
	return items, err
}

var tagRe = regexp.MustCompile(`<[^>]*>`)

// crmText applies what the CRM does to stored text (tags and the
// characters " ' \ ` « » < > removed; v2 form mode's ” and &acute;), so
// what was sent compares equal to what the CRM lists.
func crmText(s string) string {
	s = tagRe.ReplaceAllString(s, "")
	s = strings.NewReplacer("&acute;", "", "”", "").Replace(s)
	s = strings.Map(func(r rune) rune {
		switch r {
		case '"', '\'', '\\', '`', '«', '»', '<', '>':
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func fingerprint(email, phone, company, content string) string {
	return strings.ToLower(crmText(email)) + "\x00" + crmText(phone) + "\x00" + crmText(company) + "\x00" + crmText(content)
}

// fingerprintHash is the short digest of a fingerprint that the journal
// keeps.
func fingerprintHash(fp string) string {
	sum := sha256.Sum256([]byte(fp))
	return hex.EncodeToString(sum[:8])
}
