package opspage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/audit"
	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/lead"
	"leadrelay/status"
)

// siteRow is one site's line on the overview.
type siteRow struct {
	Site                              string
	Queued, Retrying, Dead, Delivered int64
	LastDelivered                     time.Time
}

// crmHealth is the CRM's box on the overview.
type crmHealth struct {
	// Circuit is the circuit's state in words; Open says calls wait.
	Circuit string
	Open    bool
	// Problem is the configuration problem and its fix, "" when none;
	// ProblemAt when a worker last saw it.
	Problem   string
	ProblemAt time.Time
	// Limit and Goodput are the fleet's adaptive concurrency limit and
	// the CRM requests answered a second in its last epoch; zero when not
	// measured.
	Limit, Goodput float64
	// Audit is the latest audit of what the CRM holds against what was
	// delivered, in one line; AuditBad when it found a lead created twice
	// or a delivered lead missing.
	Audit    string
	AuditBad bool
}

// deadRow is one dead lead on the overview.
type deadRow struct {
	ID, Site, Contact, Reason string
	Attempts                  int
	DeadAt                    time.Time
}

// overviewData is what the overview template reads.
type overviewData struct {
	Now       time.Time
	Queue     string
	Sites     []siteRow
	Partial   bool // retrying counted from the first SearchLimit retry tasks
	CRM       crmHealth
	Dead      []deadRow
	DeadTotal int
	Search    *searchData
	Query     string // the search's, "" for none
	ReadOnly  bool
	CSRF      string
	Problems  []string // what could not be read
}

// overview serves / : the sites, the CRM, the dead leads and, with ?q=, a
// search.
func (p *Page) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := overviewData{Now: p.o.Now(), Queue: p.o.Queue, ReadOnly: p.o.ReadOnly, CSRF: token(w, r)}
	problem := func(what string, err error) {
		p.o.Log.Warn("ops page: "+what, zap.Error(err))
		d.Problems = append(d.Problems, what+" could not be read (Redis unavailable?)")
	}
	var err error
	if d.Dead, d.DeadTotal, err = p.deadLeads(ctx); err != nil {
		problem("the dead leads", err)
	}
	more := make([]string, 0, len(d.Dead))
	for _, r := range d.Dead {
		more = append(more, r.Site) // a site whose every lead died
	}
	if d.Sites, d.Partial, err = p.sites(ctx, d.Now, more); err != nil {
		problem("the sites' counts", err)
	}
	if d.CRM, err = p.crm(ctx, d.Now); err != nil {
		problem("the CRM's health", err)
	}
	if d.Query = strings.TrimSpace(r.URL.Query().Get("q")); d.Query != "" {
		d.Search = p.search(ctx, d.Query)
	}
	p.render(w, "overview", http.StatusOK, d)
}

// sites counts each site's leads: its backlog (admission's count of
// undelivered leads), of which the retrying ones are read from asynq's
// retry set (bounded: partial says the bound was hit), its dead leads
// and its deliveries today (UTC). It lists the configured sites, those
// with data, and more.
func (p *Page) sites(ctx context.Context, now time.Time, more []string) (rows []siteRow, partial bool, err error) {
	backlog, err := p.store.Backlogs(ctx, p.o.Queue)
	if err != nil {
		return nil, false, err
	}
	done, err := p.store.Deliveries(ctx, now)
	if err != nil {
		return nil, false, err
	}
	retrying := map[string]int64{}
	partial, err = p.envelopes.Scan(ctx, p.o.SearchLimit, func(_ string, _ *asynq.TaskInfo, pl lead.Payload) bool {
		retrying[pl.Site]++
		return true
	}, "retry")
	if err != nil {
		return nil, false, err
	}
	names := slices.Concat(p.o.Sites, more)
	for _, m := range []map[string]int64{backlog, retrying} {
		for s := range m {
			names = append(names, s)
		}
	}
	for s := range done {
		names = append(names, s)
	}
	slices.Sort(names)
	for _, s := range slices.Compact(names) {
		if s == "" {
			continue
		}
		_, dead, err := p.dead.IDs(ctx, deadletter.Filter{Site: s, Limit: 1})
		if err != nil {
			return nil, false, err
		}
		rows = append(rows, siteRow{Site: s, Queued: max(backlog[s]-retrying[s], 0), Retrying: retrying[s],
			Dead: int64(dead), Delivered: done[s].Today, LastDelivered: done[s].Last})
	}
	return rows, partial, nil
}

// crm reads the fleet's circuit and adaptive limit.
func (p *Page) crm(ctx context.Context, now time.Time) (crmHealth, error) {
	c, err := p.store.Circuit(ctx, now)
	if err != nil {
		return crmHealth{}, err
	}
	var h crmHealth
	switch {
	case !c.Problem.IsZero():
		h.Circuit, h.Open = "open: deliveries are paused until the configuration is fixed", true
		h.Problem, h.ProblemAt = c.Problem.Text(delivery.Operators), c.ProblemAt
	case c.Wait > 0:
		h.Circuit, h.Open = fmt.Sprintf("open: the CRM failed repeatedly; calls wait %s (no attempt is spent)", c.Wait.Round(time.Second)), true
	case c.ProbeDue:
		h.Circuit = "half-open: the next call probes the CRM"
	default:
		h.Circuit = "closed: calls go through"
	}
	if h.Limit, h.Goodput, err = p.store.CRMAdaptive(ctx); err != nil {
		return h, err
	}
	h.Audit, h.AuditBad, err = p.audit(ctx)
	return h, err
}

// audit reads the latest audit's report (audit.Last).
func (p *Page) audit(ctx context.Context) (line string, bad bool, err error) {
	rep, ok, err := audit.Last(ctx, p.rc)
	switch {
	case err != nil:
		return "", false, err
	case !ok:
		return "no audit on record in the last two intervals (LEADRELAY_AUDIT_INTERVAL; 0 turns it off)", false, nil
	}
	return rep.Line(), len(rep.Duplicates)+len(rep.Missing) > 0, nil
}

// deadLeads lists the newest dead leads with their reason for operators
// (without the CRM's own text, which may repeat the lead's fields: `ctl
// dead show` has it) and their masked contact.
func (p *Page) deadLeads(ctx context.Context) ([]deadRow, int, error) {
	recs, total, err := p.dead.List(ctx, deadletter.Filter{Limit: p.o.DeadShown})
	if err != nil {
		return nil, 0, err
	}
	rows := make([]deadRow, 0, len(recs))
	for _, rec := range recs {
		row := deadRow{ID: rec.LeadID, Site: rec.Site, Reason: reasonText(rec.Reason), Attempts: rec.Attempts, DeadAt: rec.DeadAt}
		if pl, err := p.codec.Decode(rec.Payload); err == nil {
			row.Contact = masked(pl.Lead)
		}
		rows = append(rows, row)
	}
	return rows, total, nil
}

// reasonText is r in the operators' words, without the CRM's own text.
func reasonText(r delivery.Reason) string {
	r.Detail = ""
	return r.Text(delivery.Operators)
}

// masked is a lead's title and contact as operators' screens show them:
// the one rule of asynqmon's payload formatter (lead.Codec.Describe).
func masked(l lead.Lead) string {
	var parts []string
	for _, s := range []string{lead.MaskName(l.Title), lead.MaskEmail(l.Email), lead.MaskPhone(l.Phone)} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " · ")
}

// searchData is a search's answer on the overview.
type searchData struct {
	Query     string
	Found     []foundRow
	Truncated bool
	Limit     int
	Problem   string
}

// foundRow is one lead a search found, masked.
type foundRow struct {
	ID, Site, State, Contact string
	ReceivedAt               time.Time
}

// stateOf is the lead's state for a task's (status.Scan's names): the
// words status uses.
var stateOf = map[string]delivery.State{
	"pending": delivery.Queued, "active": delivery.Queued, "scheduled": delivery.Queued, "retry": delivery.Retrying,
	"archived": delivery.Dead, "completed": delivery.Delivered, "dead": delivery.Dead,
}

// search finds leads by e-mail (q holds an @) or phone.
func (p *Page) search(ctx context.Context, q string) *searchData {
	s := &searchData{Query: q, Limit: p.o.SearchLimit}
	query := status.Query{Phone: q}
	if strings.Contains(q, "@") {
		query = status.Query{Email: q}
	}
	found, err := p.status.Find(ctx, query, p.o.SearchLimit)
	switch {
	case err == nil:
	case errors.Is(err, status.ErrQuery):
		s.Problem = "Give an e-mail address or a phone number of at least 3 digits."
		return s
	default:
		p.o.Log.Warn("ops page: search", zap.Error(err))
		s.Problem = "The search could not read the leads (Redis unavailable?)."
		return s
	}
	s.Truncated = found.Truncated
	for _, f := range found.Leads {
		s.Found = append(s.Found, foundRow{ID: f.ID, Site: f.Site, State: string(stateOf[f.State]), Contact: masked(f.Lead), ReceivedAt: f.ReceivedAt})
	}
	return s
}
