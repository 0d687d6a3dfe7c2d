package v1_test

import (
	"errors"
	"testing"
	"time"

	"leadrelay/crm"
	"leadrelay/crm/crmtest"
	v1 "leadrelay/crm/v1"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// fixture is a v1 CRM and its API on a private Redis.
type fixture struct {
	t   *testing.T
	c   *crmtest.CRM
	env crm.Env
	api *v1.API
}

func newFixture(t *testing.T) *fixture {
	c := crmtest.New(crmclient.V1)
	env := crmtest.Env(t, c)
	return &fixture{t: t, c: c, env: env, api: v1.New(env)}
}

// sendClaimedTwin sends a twin of p (another lead of the same content)
// after a refresh, claims the twin's CRM id for it, and returns the twin's
// attempt record.
func (f *fixture) sendClaimedTwin(p lead.Payload) rdb.Attempt {
	f.t.Helper()
	f.refresh()
	a, twin := f.send(lead.NewPayload(p.Site, "twin", p.Lead, p.ReceivedAt))
	if ok, err := crm.Claim(f.t.Context(), f.env.Store, twin, "twin"); !ok || err != nil {
		f.t.Fatalf("claim = %v, %v", ok, err)
	}
	return a
}

// refresh merges the CRM's newest page into the journal.
func (f *fixture) refresh() {
	f.t.Helper()
	if err := f.api.Refresh(f.t.Context()); err != nil {
		f.t.Fatal(err)
	}
}

// send adds p as a run would: the attempt records the watermark first.
func (f *fixture) send(p lead.Payload) (rdb.Attempt, int64) {
	f.t.Helper()
	a := rdb.Attempt{Watermark: f.api.Watermark(), FirstAt: time.Now()}
	id, err := f.api.Add(f.t.Context(), p)
	if err != nil {
		f.t.Fatal(err)
	}
	return a, id
}

func TestLookUp(t *testing.T) {
	t.Parallel()
	// Each case prepares the CRM for lead p, whose add was uncertain, and
	// returns the attempt record the look-up starts from and the CRM id
	// it must find (0: none).
	tests := []struct {
		name        string
		prep        func(f *fixture, p lead.Payload) (rdb.Attempt, int64)
		want        crm.Finding
		fromJournal bool
		wantErr     bool
	}{
		{name: "in the journal", want: crm.Found, fromJournal: true,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				crmtest.Others(f.t, f.c, 3)
				f.refresh()
				return f.send(p)
			}},
		{name: "not stored", want: crm.NotFound, fromJournal: true,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				f.refresh()
				a := rdb.Attempt{Watermark: f.api.Watermark(), FirstAt: time.Now()}
				crmtest.Others(f.t, f.c, 3)
				return a, 0
			}},
		{name: "scrolled off the newest page, still in the journal", want: crm.Found, fromJournal: true,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				f.c.IgnorePaging = true
				crmtest.Others(f.t, f.c, 10)
				f.refresh()
				a, id := f.send(p)
				for range 6 {
					crmtest.Others(f.t, f.c, 50)
					f.refresh()
				}
				return a, id
			}},
		{name: "an identical lead's CRM id is claimed: the next match", want: crm.Found, fromJournal: true,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				a := f.sendClaimedTwin(p)
				_, id := f.send(p)
				return a, id
			}},
		{name: "an identical lead's CRM id is claimed, and only it", want: crm.NotFound, fromJournal: true,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				a := f.sendClaimedTwin(p)
				return a, 0
			}},
		{name: "a gap in the journal: list pages", want: crm.Found,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				a := rdb.Attempt{Watermark: 1, FirstAt: time.Now()} // sent before the journal's page
				crmtest.Others(f.t, f.c, 250)
				f.refresh()
				_, id := f.send(p)
				return a, id
			}},
		{name: "the newest page ends partway through the lead's second", want: crm.Found,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				// As the real CRM lists: the newest page holds the next
				// second's 190 leads and the lowest 10 ids of the lead's
				// second, so the lead (a higher id) is on page 2.
				clock := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
				f.c.WholeSeconds, f.c.Now = true, func() time.Time { return clock }
				crmtest.Others(f.t, f.c, 10)
				f.refresh()
				clock = clock.Add(time.Second)
				crmtest.Others(f.t, f.c, 50)
				a, id := f.send(p)
				clock = clock.Add(time.Second)
				crmtest.Others(f.t, f.c, 190)
				return a, id
			}},
		{name: "a gap in the journal, and a list that ignores paging", want: crm.CannotTell,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				f.c.IgnorePaging = true
				a := rdb.Attempt{Watermark: 1, FirstAt: time.Now()}
				crmtest.Others(f.t, f.c, 250)
				f.refresh()
				f.send(p)
				crmtest.Others(f.t, f.c, 250)
				return a, 0
			}},
		{name: "a list that fails", want: crm.CannotTell, wantErr: true,
			prep: func(f *fixture, p lead.Payload) (rdb.Attempt, int64) {
				f.c.ListErr = &crmclient.TransportError{Action: "list", Err: errors.New("connection refused")}
				return rdb.Attempt{}, 0
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p := crmtest.Lead(tc.name)
			a, want := tc.prep(f, p)
			res, err := f.api.LookUp(t.Context(), p, a)
			if (err != nil) != tc.wantErr || res.Finding != tc.want || res.CRMID != want || res.Journal != tc.fromJournal {
				t.Fatalf("LookUp = %+v, %v; want %v of CRM id %d, from the journal %v (error %v)",
					res, err, tc.want, want, tc.fromJournal, tc.wantErr)
			}
		})
	}
}

// TestSaw: a send waits for a refresh while the journal was never merged
// or more than three quarters of a page of sends passed since its latest
// list call; a look-up never waits.
func TestSaw(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		b       rdb.Begun
		catchUp bool
	}{
		{name: "a send, the journal never merged", b: rdb.Begun{Send: true}, catchUp: true},
		{name: "a send, 151 sends since the list call", b: rdb.Begun{Send: true, JournalReady: true, JournalSends: 151}, catchUp: true},
		{name: "a send, 150 sends since the list call", b: rdb.Begun{Send: true, JournalReady: true, JournalSends: 150, JournalTop: 40}},
		{name: "a look-up, the journal never merged", b: rdb.Begun{}},
		{name: "a send, fresh", b: rdb.Begun{Send: true, JournalReady: true, JournalSends: 3, JournalTop: 12}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if got := f.api.Saw(tc.b); got != tc.catchUp {
				t.Fatalf("Saw = %v, want %v", got, tc.catchUp)
			}
			if got := f.api.Watermark(); got != tc.b.JournalTop {
				t.Errorf("Watermark = %d, want the journal's top %d", got, tc.b.JournalTop)
			}
			waitRefresh(t, f.api)
		})
	}
}

// TestSawRefreshesEveryFiftySends: every 50 sends a background refresh
// lists the CRM's newest page.
func TestSawRefreshesEveryFiftySends(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	crmtest.Others(t, f.c, 7)
	if f.api.Saw(rdb.Begun{Send: true, JournalReady: true, JournalSends: 50}) {
		t.Fatal("Saw holds the send back")
	}
	waitRefresh(t, f.api)
	if f.c.Lists() != 1 || f.api.Watermark() != 7 {
		t.Fatalf("lists = %d, watermark %d; want one refresh up to CRM id 7", f.c.Lists(), f.api.Watermark())
	}
}

// TestSawHoldsAnOpenSecond: the CRM lists one second's leads in
// ascending ids, so the leads of the second it may still be filling count
// as sends: a burst of them holds sends back until that second is over,
// or a page could not show the second's newest leads (the chaos run with
// a list that ignores paging added 145 leads twice before).
func TestSawHoldsAnOpenSecond(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		burst   int           // leads the CRM dates in the newest second
		after   time.Duration // fleet time from the first page that showed it to the refresh
		catchUp bool
	}{
		{name: "a full second, still open", burst: 160, catchUp: true},
		{name: "a busy second, still open", burst: 140},
		{name: "a full second, over", burst: 160, after: 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			crmAt := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
			fleet := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
			c := crmtest.New(crmclient.V1)
			c.WholeSeconds, c.Now = true, func() time.Time { return crmAt }
			env := crmtest.Env(t, c)
			env.Clock = func() time.Time { return fleet }
			api := v1.New(env)
			crmtest.Others(t, c, 100) // an older second
			crmAt = crmAt.Add(time.Second)
			crmtest.Others(t, c, tc.burst)
			if err := api.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			fleet = fleet.Add(tc.after)
			if err := api.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			b, err := env.Store.Begin(t.Context(), rdb.BeginArgs{ID: "ld_x", Token: "t", Now: fleet, LockTTL: time.Minute,
				RecordTTL: time.Hour, Watermark: api.Watermark(), CountSend: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := api.Saw(b); got != tc.catchUp {
				t.Fatalf("Saw(%d sends to see) = %v, want %v", b.JournalSends, got, tc.catchUp)
			}
			waitRefresh(t, api)
		})
	}
}

// waitRefresh waits (bounded) for a background refresh to end.
func waitRefresh(t *testing.T, api *v1.API) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for api.Refreshing() {
		if time.Now().After(deadline) {
			t.Fatal("journal refresh did not end within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestResume: a fresh process sends with the journal's top as the fleet
// recorded it.
func TestResume(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	crmtest.Others(t, f.c, 5)
	f.refresh()
	fresh := v1.New(f.env)
	if err := fresh.Resume(t.Context()); err != nil || fresh.Watermark() != 5 {
		t.Fatalf("Resume = %v, watermark %d; want 5", err, fresh.Watermark())
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	crmtest.RunPreflight(t, crmclient.V1, func(env crm.Env) crm.API { return v1.New(env) }, []crmtest.PreflightCase{
		{Name: "works"},
		{Name: "wrong key", StatErr: &crmclient.APIError{Action: "stat", Code: 400}, Want: delivery.ConfigAPIKey},
		{Name: "stat unreachable", StatErr: &crmclient.TransportError{Action: "stat", Err: errors.New("refused")}, WantErr: true},
		{Name: "info answers 500", InfoErr: &crmclient.StatusError{Action: "info", StatusCode: 500}, Want: delivery.ConfigV1Broken},
		{Name: "info answers an error page", InfoErr: &crmclient.DecodeError{Action: "info", StatusCode: 200}, Want: delivery.ConfigV1Broken},
		{Name: "info unreachable", InfoErr: &crmclient.TransportError{Action: "info", Err: errors.New("refused")}, WantErr: true},
	})
}
