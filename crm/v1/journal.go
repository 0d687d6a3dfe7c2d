package v1

import (
	"context"

	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// refreshEvery is how many sends, fleet-wide, may pass between two
// refreshes of the journal: a quarter of a list page, so no lead LeadRelay
// sent can scroll off the CRM's newest 200 unseen while a refresh is on
// its way.
const refreshEvery = 50

// hold is how many sends, fleet-wide, may pass since the list call of the
// latest refresh before a send waits for a new one: three quarters of a
// page, so even a burst of sends cannot push a lead off the CRM's newest
// 200 before the journal sees it. The leads of a second the CRM may still
// be filling count as sends (rdb.Begun.JournalSends): it lists one
// second's leads in ascending ids, so a second of more leads than a page
// shows would hide its newest from every page. That caps v1 adds at about
// hold a second, fleet-wide, above what a SalesMan CRM's PHP workers take.
const hold = 150

// Watermark is the highest CRM id this process knows the journal holds.
func (a *API) Watermark() int64 { return a.top.Load() }

// Saw raises the watermark to the journal's top as Begin read it, holds a
// send back (catchUp) while the journal was never merged or more than
// hold sends passed since its latest list call, and starts a background
// refresh every refreshEvery sends.
func (a *API) Saw(b rdb.Begun) (catchUp bool) {
	a.top.Raise(b.JournalTop)
	if b.Send && (!b.JournalReady || b.JournalSends > hold) {
		// A send now could push a lead off the CRM's newest page before
		// the journal saw it: refresh first.
		return true
	}
	if b.JournalSends >= refreshEvery {
		a.refreshAsync()
	}
	return false
}

// CatchUp refreshes the journal for sends that must not go out before it;
// the process's sends that need it at once share one refresh.
func (a *API) CatchUp(ctx context.Context) error {
	seen := a.syncs.Load()
	a.now.Lock()
	defer a.now.Unlock()
	if a.syncs.Load() != seen {
		return nil // another send refreshed it meanwhile
	}
	_, err := a.refresh(ctx)
	a.syncs.Add(1)
	return err
}

// Resume reads the journal's top as the fleet recorded it, the watermark
// of this process's sends until its first refresh.
func (a *API) Resume(ctx context.Context) error {
	top, err := a.env.Store.JournalTop(ctx)
	if err != nil {
		return crm.StoreErr("read CRM journal", err)
	}
	a.top.Raise(top)
	return nil
}

// Refresh lists the CRM's newest page and merges it into the journal.
func (a *API) Refresh(ctx context.Context) error {
	_, err := a.refresh(ctx)
	return err
}

// Refreshing reports whether a background refresh is under way.
func (a *API) Refreshing() bool { return a.refreshing.Load() }

// refresh lists the CRM's newest page, merges it into the journal and
// returns the journal's range.
func (a *API) refresh(ctx context.Context) (rdb.Journal, error) {
	seq, err := a.env.Store.JournalSeq(ctx)
	if err != nil {
		return rdb.Journal{}, crm.StoreErr("read CRM journal", err)
	}
	items, err := a.env.Client.List(ctx, crmclient.ListOptions{First: "new"})
	if err != nil {
		return rdb.Journal{}, err
	}
	ji := make([]rdb.JournalItem, 0, len(items))
	for _, it := range items {
		ji = append(ji, rdb.JournalItem{CRMID: it.ID, At: it.Datum.Time, Fingerprint: crm.FingerprintHash(crm.Fingerprint(it))})
	}
	newest, n := crm.Newest(items)
	j, err := a.env.Store.JournalMerge(ctx, rdb.JournalPage{Items: ji, Complete: len(items) < crmclient.PageSize,
		Seq: seq, Low: crm.WholeFrom(items), Now: a.env.Clock(), Newest: newest, NewestN: n})
	if err != nil {
		return rdb.Journal{}, crm.StoreErr("merge CRM journal", err)
	}
	a.top.Raise(j.Max)
	return j, nil
}

// refreshAsync refreshes the journal in the background, once at a time per
// process.
func (a *API) refreshAsync() {
	if !a.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer a.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 2*a.env.Timeout)
		defer cancel()
		if _, err := a.refresh(ctx); err != nil {
			a.env.Logger().Warn("CRM journal refresh failed", zap.Error(err))
		}
	}()
}

// ReadBack refreshes the journal and reads its leads above floor: the
// shipped v1 list shows only the newest 200, the journal holds the
// newest rdb.JournalKeep as the fleet listed them.
func (a *API) ReadBack(ctx context.Context, floor int64) (crm.ReadBack, error) {
	if _, err := a.refresh(ctx); err != nil {
		return crm.ReadBack{From: 1}, err
	}
	items, j, err := a.env.Store.JournalRead(ctx, floor)
	if err != nil {
		return crm.ReadBack{From: 1}, crm.StoreErr("read CRM journal", err)
	}
	rb := crm.ReadBack{From: max(j.From, floor+1), To: j.Max}
	for _, it := range items {
		rb.Leads = append(rb.Leads, crm.Seen{CRMID: it.CRMID, Hash: it.Fingerprint})
	}
	return rb, nil
}

// SentHash is the content hash of the lead as v1 sends it, as the
// journal keeps it.
func (a *API) SentHash(p lead.Payload) string {
	return crm.FingerprintHash(crm.SentFingerprint(a.env.Client, Lead(p)))
}
