package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/lead"
)

// scanPage is how many tasks one inspector call reads.
const scanPage = 1000

// taskStates are the asynq states a lead task can be in, as Scan names
// them, most urgent first.
var taskStates = []struct {
	name string
	list func(insp *asynq.Inspector, queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
}{
	{"pending", (*asynq.Inspector).ListPendingTasks},
	{"active", (*asynq.Inspector).ListActiveTasks},
	{"scheduled", (*asynq.Inspector).ListScheduledTasks},
	{"retry", (*asynq.Inspector).ListRetryTasks},
	{"archived", (*asynq.Inspector).ListArchivedTasks},
	{"completed", (*asynq.Inspector).ListCompletedTasks},
}

// Scan calls f for every lead task of the Reader's queue that asynq holds
// (completed ones too, while it retains them: LEADRELAY_DEDUP_TTL), state
// by state in taskStates' order, until f returns false. A payload sealed
// under a key the Reader lacks comes as its envelope (lead.Codec.Peek),
// one that does not read at all as the zero Payload.
// A limit > 0 bounds the tasks read: Scan reports whether it stopped
// there. Naming states reads those only. A queue asynq has never seen
// holds nothing.
func (r *Reader) Scan(ctx context.Context, limit int, f func(state string, info *asynq.TaskInfo, p lead.Payload) bool, states ...string) (bool, error) {
	seen := 0
	for _, st := range taskStates {
		if len(states) > 0 && !slices.Contains(states, st.name) {
			continue
		}
		for page := 1; ; page++ {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			infos, err := st.list(r.insp, r.queue, asynq.PageSize(scanPage), asynq.Page(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("%w: scan %s tasks of %s: %w", ErrUnavailable, st.name, r.queue, err)
			}
			for _, info := range infos {
				if info.Type != lead.TaskType {
					continue
				}
				p, _ := r.codec.Peek(info.Payload) // the zero Payload when unreadable
				if !f(st.name, info, p) {
					return false, nil
				}
			}
			seen += len(infos)
			if limit > 0 && seen >= limit {
				return true, nil
			}
			if len(infos) < scanPage {
				break
			}
		}
	}
	return false, nil
}

// Query is a search for leads by contact: an e-mail address (any case) or
// a phone number (its digits, see samePhone). Both set must both match.
type Query struct {
	Email, Phone string
}

// ErrQuery is wrapped by Find's error for a query that names nothing to
// look for.
var ErrQuery = errors.New("status: give an e-mail address or a phone number of at least 3 digits")

// Check reports a query that names nothing to look for (ErrQuery).
func (q Query) Check() error {
	if strings.TrimSpace(q.Email) == "" && q.Phone == "" || q.Phone != "" && len(digitsOf(q.Phone)) < 3 {
		return ErrQuery
	}
	return nil
}

// Matches reports whether l has the query's contact.
func (q Query) Matches(l lead.Lead) bool {
	want := digitsOf(q.Phone)
	got := digitsOf(l.Phone)
	return (strings.TrimSpace(q.Email) == "" || strings.EqualFold(strings.TrimSpace(l.Email), strings.TrimSpace(q.Email))) &&
		(q.Phone == "" || got != "" && samePhone(got, want))
}

// SamePerson reports whether l has exactly the query's contact, for
// deleting what a person asked to erase: the e-mail (any case), and the
// phone's digits all alike (+7 and 8 before the same ten digits count as
// one number). Matches is looser (the last ten, or the last seven or more,
// of a longer number), which is right for finding but would delete
// another person's lead whose number ends alike.
func (q Query) SamePerson(l lead.Lead) bool {
	if strings.TrimSpace(q.Email) != "" && !strings.EqualFold(strings.TrimSpace(l.Email), strings.TrimSpace(q.Email)) {
		return false
	}
	if q.Phone == "" {
		return true
	}
	got, want := russianTrunk(digitsOf(l.Phone)), russianTrunk(digitsOf(q.Phone))
	return got != "" && got == want
}

// russianTrunk writes a Russian number's trunk prefix 8 as its country
// code 7, so 8 900 … and +7 900 … are one number.
func russianTrunk(d string) string {
	if len(d) == 11 && d[0] == '8' {
		return "7" + d[1:]
	}
	return d
}

// samePhone reports whether the digits got and want are one number: the
// same, or the last 10 alike when both have as many (so +7 900 … and
// 8 900 … are one number), or at least 7 that end a longer number.
func samePhone(got, want string) bool {
	const national = 10
	switch {
	case got == want:
		return true
	case len(got) >= national && len(want) >= national:
		return got[len(got)-national:] == want[len(want)-national:]
	}
	return len(want) >= 7 && strings.HasSuffix(got, want)
}

// Found is one lead a search found.
type Found struct {
	// ID and Site name the lead; State is asynq's state of its task
	// (Scan's names), or "dead" for the dead-letter store's.
	ID, Site, State string
	// ReceivedAt is when intake accepted it.
	ReceivedAt time.Time
	// Lead is its fields: personal data, which screens mask.
	Lead lead.Lead
}

// Finding is what Find found.
type Finding struct {
	// Leads are the matches, each lead once, in Scan's order, then the
	// dead-letter store's.
	Leads []Found
	// Truncated: the queue held more tasks than the search's limit, and
	// only the first were read.
	Truncated bool
}

// Find looks for the leads with q's contact among the tasks asynq holds
// (Scan, at most limit of them when limit > 0) and the dead-letter
// store's latest limit records. It opens every payload: the Reader must
// be Opening the keyring that sealed them.
func (r *Reader) Find(ctx context.Context, q Query, limit int) (Finding, error) {
	if err := q.Check(); err != nil {
		return Finding{}, err
	}
	var out Finding
	seen := map[string]bool{}
	add := func(state string, p lead.Payload) {
		if p.ID == "" || seen[p.ID] || !q.Matches(p.Lead) {
			return
		}
		seen[p.ID] = true
		out.Leads = append(out.Leads, Found{ID: p.ID, Site: p.Site, State: state, ReceivedAt: p.ReceivedAt, Lead: p.Lead})
	}
	var err error
	out.Truncated, err = r.Scan(ctx, limit, func(state string, _ *asynq.TaskInfo, p lead.Payload) bool {
		add(state, p)
		return true
	})
	if err != nil {
		return Finding{}, err
	}
	recs, _, err := r.dead.List(ctx, deadletter.Filter{Limit: limit})
	if err != nil {
		return Finding{}, fmt.Errorf("%w: dead letters: %w", ErrUnavailable, err)
	}
	for _, rec := range recs {
		if p, err := r.codec.Decode(rec.Payload); err == nil {
			add("dead", p)
		}
	}
	return out, nil
}

// digitsOf is s's decimal digits.
func digitsOf(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}
