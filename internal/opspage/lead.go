package opspage

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"leadrelay/delivery"
	"leadrelay/status"
)

// leadData is what the lead template reads: where the lead is (status,
// the one answer) and its timeline.
type leadData struct {
	Now      time.Time
	ID       string
	Found    bool
	Problem  string
	St       status.Status
	Contact  string
	Reason   string
	Runs     []runRow
	Notice   string // after a re-run: what it did
	CanRerun bool
	CSRF     string
}

// runRow is one run of the timeline in the operators' words.
type runRow struct {
	N                int
	At, LastAt       time.Time
	Repeats          int
	Worker, End, Why string
	CRMID            int64
	Took             time.Duration
	Adds, LookUps    int
	Fenced           bool
}

// lead serves /leads/{id}: the lead's state, masked contact and timeline.
func (p *Page) lead(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d := leadData{Now: p.o.Now(), ID: id, CSRF: token(w, r), Notice: notices[r.URL.Query().Get("rerun")]}
	st, err := p.status.Lead(r.Context(), id)
	switch {
	case errors.Is(err, status.ErrNotFound):
		d.Problem = "No lead with this id: unknown, or its records expired (LEADRELAY_DEDUP_TTL)."
		p.render(w, "lead", http.StatusNotFound, d)
		return
	case err != nil:
		p.o.Log.Warn("ops page: lead status", zap.String("lead_id", id), zap.Error(err))
		d.Problem = "The lead's status could not be read (Redis unavailable?)."
		p.render(w, "lead", http.StatusServiceUnavailable, d)
		return
	}
	d.Found, d.St, d.Reason = true, st, reasonText(st.Reason)
	d.CanRerun = st.State == delivery.Dead && !p.o.ReadOnly
	if st.Lead != nil {
		d.Contact = masked(*st.Lead)
	}
	for i, run := range st.Runs {
		d.Runs = append(d.Runs, runRow{N: i + 1, At: run.At, LastAt: run.LastAt, Repeats: run.Repeats, Worker: run.Worker,
			End: string(run.End), Why: reasonText(run.Reason), CRMID: run.CRMID, Took: run.Duration.Round(time.Millisecond),
			Adds: run.Adds, LookUps: run.LookUps, Fenced: run.Fenced})
	}
	p.render(w, "lead", http.StatusOK, d)
}

// notices are what the lead's page says after a re-run (?rerun=).
var notices = map[string]string{
	"queued": "Re-run: the lead is queued again.",
	"live":   "Not re-run: the lead's task is not dead (queued, retrying or delivered).",
	"gone":   "Not re-run: the lead is not in the dead-letter store (re-run or delivered meanwhile?).",
	"failed": "Not re-run: asynq refused it, or its stored payload is unusable (the log says which).",
}

// rerun serves POST /leads/{id}/rerun: the dead lead back to the queue
// through the dead-letter store's Requeue (as /ops/dead and `ctl dead
// requeue`), then back to the lead's page, which says what happened.
func (p *Page) rerun(w http.ResponseWriter, r *http.Request) {
	if err := checkCSRF(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if p.o.ReadOnly {
		http.Error(w, "the ops UI is read-only (LEADRELAY_UI_READONLY)", http.StatusForbidden)
		return
	}
	id := r.PathValue("id")
	res, err := p.dead.Requeue(r.Context(), []string{id}, nil)
	if err != nil {
		p.o.Log.Warn("ops page: re-run", zap.String("lead_id", id), zap.Error(err))
		http.Error(w, "the re-run failed: the dead-letter store could not be read (Redis unavailable?)", http.StatusServiceUnavailable)
		return
	}
	notice := "failed"
	switch {
	case res.Requeued() > 0:
		notice = "queued"
	case len(res.Skipped) > 0:
		notice = "live"
	case len(res.NotFound) > 0:
		notice = "gone"
	default:
		p.o.Log.Warn("ops page: re-run refused", zap.String("lead_id", id), zap.Any("failed", res.Failed))
	}
	http.Redirect(w, r, "/leads/"+url.PathEscape(id)+"?rerun="+notice, http.StatusSeeOther)
}
