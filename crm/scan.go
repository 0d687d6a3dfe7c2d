package crm

import (
	"context"
	"math"
	"time"

	"go.uber.org/zap"

	"leadrelay/crmclient"
)

// Scan bounds.
const (
	// dateMargin widens date filters: the CRM's dates are its server's
	// local time, off by hours between v1 and v2.
	dateMargin = 24 * time.Hour
	// maxScanPages bounds a scan (200 leads a page).
	maxScanPages = 50
	// probePage is a page number far beyond any CRM's leads within a
	// scan's date range.
	probePage = 1 << 20
)

// Scan walks the CRM's leads newest first, created since first (both
// dates set: one alone is broken on the real CRM; a day's margin for the
// CRM's local time), until match finds the lead, the leads get older than
// first, or the pages end. New leads arriving meanwhile only push older
// ones to later pages, so none is skipped. A CRM that ignores paging (v1
// as shipped answers the newest 200 whatever is asked) or more than
// maxScanPages pages make the answer CannotTell. floor, when known (> 0),
// is the highest CRM id recorded before the first send: a page holding
// only ids up to it, across more than one second, ends the scan, since
// every lead from there on is older than the lead looked for. A page of
// one second does not: the CRM lists one second's leads in ascending ids,
// so the lead looked for may follow on the next page.
func Scan(ctx context.Context, env Env, first time.Time, floor int64, match func(crmclient.ListItem) (bool, error)) (Result, error) {
	cutoff := first.Add(-dateMargin)
	o := crmclient.ListOptions{First: "new", DateStart: cutoff, DateEnd: env.Clock().Add(dateMargin)}
	var prevFirst int64 = -1
	for page := 0; page < maxScanPages; page++ {
		o.Page = page
		items, err := env.Client.List(ctx, o)
		if err != nil {
			return Result{Finding: CannotTell}, err
		}
		if len(items) > 0 && items[0].ID == prevFirst {
			// Either the CRM ignores the offset, or exactly a page of new
			// leads arrived since the last page. Ask a page far beyond
			// the end to tell which: only a CRM that ignores it answers.
			ignored, err := offsetIgnored(ctx, env.Client, o)
			if err != nil || ignored {
				return Result{Finding: CannotTell}, err
			}
			env.Logger().Info("reconcile: a full page of new leads arrived between two list pages; the CRM pages, the scan goes on",
				zap.Int("page", page))
		}
		for _, it := range items {
			if !it.Datum.Time.IsZero() && it.Datum.Time.Before(cutoff) {
				return Result{Finding: NotFound}, nil
			}
			ok, err := match(it)
			if err != nil {
				return Result{Finding: CannotTell}, err
			}
			if ok {
				return Result{Finding: Found, CRMID: it.ID}, nil
			}
		}
		if len(items) < crmclient.PageSize || floor > 0 && allUpTo(items, floor) && spansSeconds(items) {
			return Result{Finding: NotFound}, nil
		}
		prevFirst = items[0].ID
	}
	return Result{Finding: CannotTell}, nil
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

// spansSeconds reports whether a page, listed newest first, holds leads
// of more than one second (both ends' dates known).
func spansSeconds(items []crmclient.ListItem) bool {
	newest, oldest := items[0].Datum.Time, items[len(items)-1].Datum.Time
	return !newest.IsZero() && !oldest.IsZero() && oldest.Before(newest)
}

// WholeFrom returns the lowest CRM id from which a list page, newest
// first by datum, holds every lead: the CRM's datum has whole seconds and
// it lists one second's leads in ascending ids, so a full page may end
// partway through its oldest second, whose higher ids follow on the next
// page. A page shorter than PageSize is the whole list (0: every id); a
// full page of one second holds no id for sure (math.MaxInt64); a page
// without dates is taken whole (0), as before dates were read.
func WholeFrom(items []crmclient.ListItem) int64 {
	if len(items) < crmclient.PageSize {
		return 0
	}
	oldest := items[len(items)-1].Datum.Time
	if oldest.IsZero() {
		return 0
	}
	low := int64(math.MaxInt64)
	for _, it := range items {
		if it.Datum.Time.After(oldest) && it.ID < low {
			low = it.ID
		}
	}
	return low
}

// Newest returns a page's newest date and how many of its leads have it
// (zero and 0 when the page has no dates): the CRM's datum has whole
// seconds, and it may still be adding leads to that second.
func Newest(items []crmclient.ListItem) (time.Time, int) {
	var newest time.Time
	n := 0
	for _, it := range items {
		switch t := it.Datum.Time; {
		case t.IsZero():
		case t.After(newest):
			newest, n = t, 1
		case t.Equal(newest):
			n++
		}
	}
	return newest, n
}

// offsetIgnored reports whether the CRM answers leads for a page that
// cannot exist, i.e. ignores the offset (v1 as shipped).
func offsetIgnored(ctx context.Context, c Client, o crmclient.ListOptions) (bool, error) {
	o.Page = probePage
	items, err := c.List(ctx, o)
	return len(items) > 0, err
}

// Logger is Log, or a logger that logs nothing.
func (e Env) Logger() *zap.Logger {
	if e.Log == nil {
		return zap.NewNop()
	}
	return e.Log
}
