package worker

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/crmclient"
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
// On v1 a found CRM id is claimed in leadrelay:crm:claimed, so two genuine
// identical leads never map to one CRM lead.
func (h *Handler) reconcile(ctx context.Context, p lead.Payload, a attempt) (int64, reconcileResult, error) {
	first := a.firstAt
	if first.IsZero() {
		first = p.ReceivedAt
	}
	if h.crm.Version() == crmclient.V2 {
		return h.reconcileV2(ctx, p, first)
	}
	return h.reconcileV1(ctx, p, first)
}

// reconcileV2 looks for the lead's uids stamp.
func (h *Handler) reconcileV2(ctx context.Context, p lead.Payload, first time.Time) (int64, reconcileResult, error) {
	return h.scan(ctx, first, func(it crmclient.ListItem) (bool, error) {
		return it.UIDs[UIDKey] == p.ID, nil
	})
}

// reconcileV1 matches on email, phone, company and content (v1 has no
// uids), skipping CRM ids another delivery claimed and claiming the match,
// so two genuine identical leads never map to one CRM lead.
func (h *Handler) reconcileV1(ctx context.Context, p lead.Payload, first time.Time) (int64, reconcileResult, error) {
	want := fingerprint(p.Lead.Email, p.Lead.Phone, p.Lead.Company, p.Lead.Description)
	return h.scan(ctx, first, func(it crmclient.ListItem) (bool, error) {
		if fingerprint(it.Email, it.Phone, it.Company, it.Content) != want {
			return false, nil
		}
		won, err := claimScript.Run(ctx, h.rdb, []string{claimedKey, attemptKey(p.ID)},
			h.o.Clock().UnixMilli(), it.ID).Int()
		if err != nil {
			return false, storeErr("claim CRM id", err)
		}
		return won == 1, nil
	})
}

// claimScript claims a CRM id for one lead: it wins when the id is free, or
// when this lead claimed it in an earlier reconcile whose delivered marker
// was never written (the claim is noted on the lead's attempt record, which
// only a recorded delivery removes).
// KEYS: claimed set, attempt. ARGV: now ms, CRM id.
var claimScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'claimed') == ARGV[2] then return 1 end
if redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2]) == 1 then
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'claimed', ARGV[2]) end
  return 1
end
return 0
`)

// scan walks the CRM's leads newest first, created since the first attempt
// (both dates set: one alone is broken on the real CRM; a day's margin for
// the CRM's local time), until match finds the lead, the leads get older
// than the first attempt, or the pages end. New leads arriving meanwhile
// only push older ones to later pages, so none is skipped. A CRM that
// ignores paging (v1 as shipped answers the newest 200 whatever is asked)
// or more than maxReconcilePages pages make the answer unknown.
func (h *Handler) scan(ctx context.Context, first time.Time, match func(crmclient.ListItem) (bool, error)) (int64, reconcileResult, error) {
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
		if len(items) < crmclient.PageSize {
			return 0, reconcileNotFound, nil
		}
		prevFirst = items[0].ID
	}
	return 0, reconcileUnknown, nil
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
		if items, err = h.list(ctx, o); err == nil || crmclient.Classify(err) != crmclient.ClassTransient {
			return items, err
		}
	}
	return nil, err
}

// list fetches one page through the Limiter: a reconcile is a CRM request
// like any other.
func (h *Handler) list(ctx context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, h.o.CRMTimeout)
	defer cancel()
	return h.crm.List(ctx, o)
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
