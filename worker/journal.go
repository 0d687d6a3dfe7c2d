package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
)

// journalRefreshEvery is how many sends, fleet-wide, may pass between two
// refreshes of the v1 journal: a quarter of a list page, so no lead
// LeadRelay sent can scroll off the CRM's newest 200 unseen while a
// refresh is on its way.
const journalRefreshEvery = 50

// journalHold is how many sends, fleet-wide, may pass since the list call
// of the latest refresh before a v1 send waits for a new one: three
// quarters of a page, so even a burst of sends cannot push a lead off the
// CRM's newest 200 before the journal sees it. journalWait is how long a
// run that keeps meeting it is postponed.
const (
	journalHold = 150
	journalWait = 200 * time.Millisecond
)

// journal is a process's part in keeping the v1 journal (rdb.Journal).
type journal struct {
	// top is the highest CRM id this process knows the journal holds; a
	// send records it as its watermark.
	top        atomic.Int64
	refreshing atomic.Bool
	syncs      atomic.Int64 // synchronous refreshes done
	// now serializes this process's synchronous refreshes: runs that meet
	// journalHold together wait for one list call.
	now sync.Mutex
}

// refreshJournal lists the CRM's newest page and merges it into the
// journal.
func (h *Handler) refreshJournal(ctx context.Context) (rdb.Journal, error) {
	seq, err := h.store.JournalSeq(ctx)
	if err != nil {
		return rdb.Journal{}, storeErr("read CRM journal", err)
	}
	items, err := h.listPage(ctx, crmclient.ListOptions{First: "new"})
	if err != nil {
		return rdb.Journal{}, err
	}
	ji := make([]rdb.JournalItem, 0, len(items))
	for _, it := range items {
		ji = append(ji, rdb.JournalItem{CRMID: it.ID, At: it.Datum.Time,
			Fingerprint: fingerprintHash(fingerprint(it.Email, it.Phone, it.Company, it.Content))})
	}
	j, err := h.store.JournalMerge(ctx, ji, len(items) < crmclient.PageSize, seq)
	if err != nil {
		return rdb.Journal{}, storeErr("merge CRM journal", err)
	}
	h.journal.saw(j.Max)
	return j, nil
}

// saw raises this process's view of the journal's top CRM id.
func (jl *journal) saw(top int64) {
	for {
		old := jl.top.Load()
		if top <= old || jl.top.CompareAndSwap(old, top) {
			return
		}
	}
}

// refreshJournalNow refreshes the journal for a run that must not send
// before it; runs of this process that need it at once share one refresh.
func (h *Handler) refreshJournalNow(ctx context.Context) error {
	seen := h.journal.syncs.Load()
	h.journal.now.Lock()
	defer h.journal.now.Unlock()
	if h.journal.syncs.Load() != seen {
		return nil // another run refreshed it meanwhile
	}
	_, err := h.refreshJournal(ctx)
	h.journal.syncs.Add(1)
	return err
}

// refreshJournalAsync refreshes the journal in the background, once at a
// time per process.
func (h *Handler) refreshJournalAsync() {
	if !h.journal.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer h.journal.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 2*h.o.CRMTimeout)
		defer cancel()
		if _, err := h.refreshJournal(ctx); err != nil {
			h.log.Warn("CRM journal refresh failed", zap.Error(err))
		}
	}()
}

// Start keeps checking the CRM while ctx lives, in the background: a
// preflight of the CRM's configuration now and every preflightEvery, and
// on v1 a refresh of the journal, so even the first sends have a
// watermark. It returns at once (a slow CRM must not delay a worker's
// start); until the first check ends, sends use the journal's top as the
// fleet last recorded it.
func (h *Handler) Start(ctx context.Context) {
	check := func() {
		if h.v1() {
			if _, err := h.refreshJournal(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("CRM journal refresh failed", zap.Error(err))
			}
		}
		if _, err := h.Preflight(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("CRM preflight could not reach the CRM", zap.Error(err))
		}
	}
	if top, err := h.store.JournalTop(ctx); err == nil {
		h.journal.top.Store(top)
	}
	h.watchFleet(ctx)
	go every(ctx, preflightEvery, check)
}
