// Package v1 is SalesMan's leads API v1 (developer/v1/leads) as a delivery
// run needs it. v1 carries no stamp, so a look-up matches a lead on its
// email, phone, company and text. The shipped v1 list ignores every
// parameter and shows only the CRM's newest 200 leads, so a lead may
// scroll off before a look-up could page to it; a journal of the CRM's
// newest leads (journal.go), kept by the fleet in Redis, still holds it.
//
// Current SalesMan releases ship a v1 whose add and info always fail while
// stat works: the preflight tells that apart from a passing fault.
package v1

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// API is v1. Build it with New; safe for concurrent use.
type API struct {
	env crm.Env
	// top is the highest CRM id this process knows the journal holds; a
	// send records it as its watermark.
	top        crm.Top
	refreshing atomic.Bool
	syncs      atomic.Int64 // synchronous refreshes done
	// now serializes this process's synchronous refreshes: sends that
	// Saw hold back together wait for one list call.
	now sync.Mutex
}

var _ crm.API = (*API)(nil)

// New returns v1 working with env.
func New(env crm.Env) *API { return &API{env: env} }

// Version is crmclient.V1.
func (*API) Version() crmclient.APIVersion { return crmclient.V1 }

// Caps: every send is counted for the journal, and an add answered with
// an error page calls for a preflight (a current SalesMan answers every v1
// add so).
func (*API) Caps() crm.Caps { return crm.Caps{CountSends: true, CheckErrorPages: true} }

// Add sends the lead as it is: v1 has no stamp.
func (a *API) Add(ctx context.Context, p lead.Payload) (int64, error) {
	return a.env.Client.Add(ctx, Lead(p))
}

// Lead is the lead as v1 sends it.
func Lead(p lead.Payload) crmclient.Lead { return crmclient.Lead{Lead: p.Lead} }

// LookUp matches on email, phone, company and text. It looks in the
// journal first, which holds every CRM lead above the watermark the send
// recorded unless it has a gap since; then it scans list pages (which a
// CRM that ignores paging cannot answer).
func (a *API) LookUp(ctx context.Context, p lead.Payload, at rdb.Attempt) (crm.Result, error) {
	fp := crm.SentFingerprint(a.env.Client, Lead(p))
	if j, err := a.refresh(ctx); err != nil {
		return crm.Result{Finding: crm.CannotTell}, err
	} else if j.Covers(at.Watermark) {
		if res, ok, err := a.inJournal(ctx, p.ID, fp, at.Watermark); ok || err != nil {
			return res, err
		}
	} else {
		a.env.Logger().Info("reconcile: the CRM journal has a gap since the lead's first send; scanning list pages",
			zap.String("lead_id", p.ID), zap.Int64("watermark", at.Watermark), zap.Int64("journal_from", j.From), zap.Int64("journal_max", j.Max))
	}
	return crm.Scan(ctx, a.env, crm.Since(p, at), at.Watermark, func(it crmclient.ListItem) (bool, error) {
		if crm.Fingerprint(it) != fp {
			return false, nil
		}
		return crm.Claim(ctx, a.env.Store, it.ID, p.ID)
	})
}

// inJournal looks for fingerprint fp among the journal's leads above
// watermark, oldest first, claiming the first free match for lead id. ok
// says the journal still covers the watermark, so its answer stands.
func (a *API) inJournal(ctx context.Context, id, fp string, watermark int64) (res crm.Result, ok bool, err error) {
	items, j, err := a.env.Store.JournalRead(ctx, watermark)
	if err != nil {
		return crm.Result{Finding: crm.CannotTell}, false, crm.StoreErr("read CRM journal", err)
	}
	if !j.Covers(watermark) {
		return crm.Result{}, false, nil
	}
	sort.Slice(items, func(i, k int) bool { return items[i].CRMID < items[k].CRMID })
	want := crm.FingerprintHash(fp)
	for _, it := range items {
		if it.Fingerprint != want {
			continue
		}
		if ok, err := crm.Claim(ctx, a.env.Store, it.CRMID, id); err != nil {
			return crm.Result{Finding: crm.CannotTell, Journal: true}, true, err
		} else if ok {
			return crm.Result{Finding: crm.Found, CRMID: it.CRMID, Journal: true}, true, nil
		}
	}
	return crm.Result{Finding: crm.NotFound, Journal: true}, true, nil
}

// broken is the problem a preflight reports for a v1 CRM whose stat works
// while info (and so add) fails.
var broken = delivery.Reason{Code: delivery.ConfigV1Broken}

// Preflight checks that stat answers (URL, login, key), and that info
// does too: current SalesMan releases ship a v1 whose add and info always
// fail (HTTP 500 or an error page) while stat works.
func (a *API) Preflight(ctx context.Context) (delivery.Reason, error) {
	if problem, err := crm.CheckStat(ctx, a.env.Client); err != nil || !problem.IsZero() {
		return problem, err
	}
	_, err := a.env.Client.Info(ctx, 1)
	switch d := crmclient.Diagnose(err); {
	case d.Reason.Outcome() == delivery.Paused:
		return d.Reason, nil
	case d.Reason.Code == delivery.CRMUnexpected, d.Reason.HTTPStatus == http.StatusInternalServerError:
		return broken, nil
	case err != nil && !errors.Is(err, crmclient.ErrNotFound):
		return delivery.Reason{}, err
	}
	return delivery.Reason{}, nil
}
