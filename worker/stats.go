package worker

import (
	"sync/atomic"

	"leadrelay/crm"
)

// Stats counts what a Handler did since it was built.
type Stats struct {
	// Delivered counts leads recorded as delivered (added or reconciled).
	Delivered int64
	// Duplicates counts tasks skipped because the lead was delivered.
	Duplicates int64
	// ReconcileFound, ReconcileNotFound and ReconcileUnknown count the
	// outcomes of look-ups after an uncertain add; ReconcileErrors counts
	// look-ups that failed.
	ReconcileFound, ReconcileNotFound, ReconcileUnknown, ReconcileErrors int64
	// ReconcileJournal counts v1 look-ups answered from the CRM journal
	// rather than by scanning list pages.
	ReconcileJournal int64
	// LeadFaults counts CRM failures that followed their lead (it failed
	// before, and the CRM worked for others since): counted neither
	// toward the circuit nor as a load signal.
	LeadFaults int64
}

type counters struct {
	delivered, duplicates                  atomic.Int64
	found, notFound, unknown, reconcileErr atomic.Int64
	journal, leadFaults                    atomic.Int64
}

// reconcile counts a look-up's answer.
func (c *counters) reconcile(r crm.Result, err error) {
	if r.Journal {
		c.journal.Add(1)
	}
	switch {
	case err != nil:
		c.reconcileErr.Add(1)
	case r.Finding == crm.Found:
		c.found.Add(1)
	case r.Finding == crm.NotFound:
		c.notFound.Add(1)
	default:
		c.unknown.Add(1)
	}
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	c := &h.stats
	return Stats{
		Delivered: c.delivered.Load(), Duplicates: c.duplicates.Load(),
		ReconcileFound: c.found.Load(), ReconcileNotFound: c.notFound.Load(),
		ReconcileUnknown: c.unknown.Load(), ReconcileErrors: c.reconcileErr.Load(),
		ReconcileJournal: c.journal.Load(), LeadFaults: c.leadFaults.Load(),
	}
}
