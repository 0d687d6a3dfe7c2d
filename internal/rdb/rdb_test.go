package rdb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/delivery"
	"leadrelay/internal/redistest"
)

// startStore is a Store on a redis-server of the test's own, and a client
// of that server for what the test reads and writes beside the store.
func startStore(t *testing.T) (*Store, *redis.Client) {
	t.Helper()
	rc := redistest.Start(t).Client()
	return New(rc), rc
}

// TestJournalCoverage: the journal proves a lead was seen only where its
// pages overlap; a page that starts above the journal's top leaves a gap,
// and a short page is the CRM's whole list.
func TestJournalCoverage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	page := func(lo, hi int64) []JournalItem {
		var out []JournalItem
		for id := hi; id >= lo; id-- {
			out = append(out, JournalItem{CRMID: id, At: time.UnixMilli(id), Fingerprint: "f"})
		}
		return out
	}
	type merge struct {
		lo, hi   int64
		complete bool
		low      int64 // the lowest id that counts for the range
	}
	tests := []struct {
		name     string
		merges   []merge
		want     Journal
		covers   int64 // a watermark the journal must cover
		notCover int64 // and one it must not (0: none)
	}{
		{"one page", []merge{{301, 500, false, 0}}, Journal{From: 301, Max: 500}, 300, 299},
		{"overlapping pages", []merge{{301, 500, false, 0}, {401, 600, false, 0}}, Journal{From: 301, Max: 600}, 400, 299},
		{"adjacent pages", []merge{{301, 500, false, 0}, {501, 700, false, 0}}, Journal{From: 301, Max: 700}, 300, 0},
		{"a gap restarts the range", []merge{{301, 500, false, 0}, {502, 701, false, 0}}, Journal{From: 502, Max: 701}, 501, 400},
		{"an older page merged late", []merge{{401, 600, false, 0}, {301, 500, false, 0}}, Journal{From: 301, Max: 600}, 300, 0},
		{"an empty CRM, then its first leads", []merge{{0, -1, true, 0}, {101, 150, true, 0}}, Journal{From: 1, Max: 150}, 0, 0},
		{"empty, then a full page: a gap", []merge{{0, -1, true, 0}, {101, 300, false, 0}}, Journal{From: 101, Max: 300}, 100, 0},
		// The page's oldest second may be listed in part: its ids count
		// for nothing, and the next page must reach the range.
		{"a page's oldest second does not count", []merge{{301, 500, false, 305}}, Journal{From: 305, Max: 500}, 304, 303},
		{"nor does it join two pages", []merge{{301, 500, false, 0}, {495, 694, false, 503}}, Journal{From: 503, Max: 694}, 502, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := startStore(t)
			var j Journal
			var err error
			for _, m := range tc.merges {
				if j, err = s.JournalMerge(ctx, JournalPage{Items: page(m.lo, m.hi), Complete: m.complete, Low: m.low}); err != nil {
					t.Fatal(err)
				}
			}
			if j != tc.want {
				t.Fatalf("journal = %+v, want %+v", j, tc.want)
			}
			if !j.Covers(tc.covers) {
				t.Errorf("journal %+v does not cover leads above %d", j, tc.covers)
			}
			if tc.notCover > 0 && j.Covers(tc.notCover) {
				t.Errorf("journal %+v claims to cover leads above %d", j, tc.notCover)
			}
			items, _, err := s.JournalRead(ctx, tc.want.Max-1)
			if err != nil || len(items) != 1 || items[0].CRMID != tc.want.Max || items[0].Fingerprint != "f" {
				t.Errorf("JournalRead above %d = %+v, %v", tc.want.Max-1, items, err)
			}
		})
	}
}

// TestJournalUnseenSends: sends counted while a page is being listed stay
// unseen after that page is merged.
func TestJournalUnseenSends(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := startStore(t)
	begin := func(id string) Begun {
		t.Helper()
		b, err := s.Begin(ctx, BeginArgs{ID: id, Token: "t", Now: time.Now(), LockTTL: time.Minute, RecordTTL: time.Hour, CountSend: true})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	begin("ld_a")
	begin("ld_b")
	seq, err := s.JournalSeq(ctx) // a refresh starts: it lists the CRM now
	if err != nil || seq != 2 {
		t.Fatalf("seq = %d, %v", seq, err)
	}
	begin("ld_c") // sent while the list call is under way
	if _, err := s.JournalMerge(ctx, JournalPage{Complete: true, Seq: seq}); err != nil {
		t.Fatal(err)
	}
	if b := begin("ld_d"); b.JournalSends != 2 || !b.JournalReady {
		t.Fatalf("after the merge: %+v, want 2 unseen sends (c and d)", b)
	}
}

// TestJournalOpenSecond: the leads of the newest second any page showed
// (the most a page showed of it) count as sends to see until that second
// is over (OpenFor after the first page that showed it), whatever order
// the pages are merged in.
func TestJournalOpenSecond(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	sec := time.Date(2026, 12, 7, 9, 0, 5, 0, time.UTC) // the CRM's own clock
	type merge struct {
		seq    int64
		at     time.Duration // fleet time after t0
		newest time.Time
		n      int
	}
	tests := []struct {
		name   string
		merges []merge
		sends  int64 // JournalSends of the Begin that follows (seq 1 more)
	}{
		{"an open second", []merge{{0, 0, sec, 120}}, 121},
		{"still open when listed again", []merge{{0, 0, sec, 120}, {0, time.Second, sec, 130}}, 131},
		{"over", []merge{{0, 0, sec, 120}, {0, 2 * time.Second, sec, 120}}, 1},
		{"a newer second opens", []merge{{0, 0, sec, 120}, {0, 2 * time.Second, sec.Add(time.Second), 7}}, 8},
		{"no dates", []merge{{0, 0, time.Time{}, 0}}, 1},
		{"an older page merged late", []merge{{0, 2 * time.Second, sec, 5}, {-1, 3 * time.Second, sec.Add(-time.Second), 190}}, 6},
		// Two refreshes' list calls answered in the other order than
		// their seqs: the page that shows the newer second counts,
		// whichever seq it was listed at.
		{"a page of a later seq showing an older second", []merge{{1, 0, sec.Add(-time.Second), 40}, {0, 0, sec, 160}}, 160},
		{"two pages of one open second", []merge{{0, 0, sec, 130}, {0, 500 * time.Millisecond, sec, 120}}, 131},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := startStore(t)
			for i := range 2 { // sends before the pages: seq 2
				if _, err := s.Begin(ctx, BeginArgs{ID: fmt.Sprint("ld_", i), Token: "t", Now: t0, LockTTL: time.Minute, RecordTTL: time.Hour, CountSend: true}); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range tc.merges {
				if _, err := s.JournalMerge(ctx, JournalPage{Items: []JournalItem{{CRMID: 1, Fingerprint: "f"}}, Complete: true,
					Seq: 2 + m.seq, Now: t0.Add(m.at), Newest: m.newest, NewestN: m.n}); err != nil {
					t.Fatal(err)
				}
			}
			b, err := s.Begin(ctx, BeginArgs{ID: "ld_next", Token: "t", Now: t0, LockTTL: time.Minute, RecordTTL: time.Hour, CountSend: true})
			if err != nil || b.JournalSends != tc.sends {
				t.Fatalf("JournalSends = %d, %v; want %d", b.JournalSends, err, tc.sends)
			}
		})
	}
}

// TestAdmit: a lead is counted in its site's backlog while the caps
// allow, a delivered one is recognised and not counted, a refusal counts
// nothing, and counts that drifted heal once the queue holds nothing.
func TestAdmit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	pending := asynqQueueKeys("leads")[0]
	type step struct {
		do       string // "admit", "enqueue" (a task lands in asynq's list), "deliver", "unreserve", "drain"
		id, site string
		want     Admission
		siteN    int64
		total    int64
	}
	steps := []step{
		{do: "admit", id: "ld_1", site: "shop", want: Reserved, siteN: 1, total: 1},
		{do: "enqueue", id: "ld_1"},
		{do: "admit", id: "ld_2", site: "shop", want: Reserved, siteN: 2, total: 2},
		{do: "enqueue", id: "ld_2"},
		{do: "admit", id: "ld_3", site: "shop", want: SiteFull, siteN: 2, total: 2},
		{do: "admit", id: "ld_4", site: "blog", want: Reserved, siteN: 1, total: 3},
		{do: "enqueue", id: "ld_4"},
		{do: "admit", id: "ld_5", site: "blog", want: TotalFull, siteN: 1, total: 3},
		{do: "deliver", id: "ld_1", site: "shop"},
		{do: "admit", id: "ld_1", site: "shop", want: Delivered},
		{do: "unreserve", site: "blog"},
		{do: "unreserve", site: "blog"}, // never below zero
		{do: "admit", id: "ld_6", site: "blog", want: Reserved, siteN: 1, total: 3},
		// The reservation of ld_6 is never enqueued (an intake died): the
		// count drifted, and heals once the queue is empty.
		{do: "drain"},
		{do: "admit", id: "ld_7", site: "shop", want: Reserved, siteN: 1, total: 1},
		{do: "enqueue", id: "ld_7"},
	}
	for i, st := range steps {
		switch st.do {
		case "admit":
			got, err := s.Admit(ctx, AdmitArgs{Queue: "leads", ID: st.id, Site: st.site, SiteMax: 2, TotalMax: 3})
			if err != nil || got.Admission != st.want || got.SiteN != st.siteN || got.Total != st.total {
				t.Fatalf("step %d: Admit(%s, %s) = %+v, %v; want %v with %d/%d", i, st.id, st.site, got, err, st.want, st.siteN, st.total)
			}
			if (got.Marker != nil) != (st.want == Delivered) {
				t.Errorf("step %d: marker %+v", i, got.Marker)
			}
		case "enqueue":
			rc.LPush(ctx, pending, st.id)
		case "deliver":
			rc.LRem(ctx, pending, 1, st.id)
			if _, err := s.Finish(ctx, FinishArgs{Queue: "leads", Marker: Marker{LeadID: st.id, Site: st.site, CRMID: 7, At: time.Now()},
				Token: "t", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01"}); err != nil {
				t.Fatalf("step %d: Finish: %v", i, err)
			}
		case "unreserve":
			if err := s.Unreserve(ctx, "leads", st.site); err != nil {
				t.Fatal(err)
			}
		case "drain":
			rc.Del(ctx, pending)
		}
	}
	if n, total, err := s.Backlog(ctx, "leads", "shop"); err != nil || n != 1 || total != 1 {
		t.Errorf("Backlog = %d, %d, %v; want 1, 1", n, total, err)
	}
}

// TestClaim: a CRM id belongs to the first lead that claims it, and to it
// again on a second try.
func TestClaim(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := startStore(t)
	for _, tc := range []struct {
		lead string
		want bool
	}{{"ld_a", true}, {"ld_b", false}, {"ld_a", true}} {
		if got, err := s.Claim(ctx, 940, tc.lead, time.Hour); err != nil || got != tc.want {
			t.Errorf("Claim(940, %s) = %v, %v; want %v", tc.lead, got, err, tc.want)
		}
	}
}

// TestDeliveryStates walks one lead through begin, release and finish,
// and a Redis whose script cache was flushed (a restart or failover) in
// between.
func TestDeliveryStates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	now := time.Now()
	args := BeginArgs{ID: "ld_q", Token: "t1", Now: now, LockTTL: time.Minute, RecordTTL: time.Hour}
	b, err := s.Begin(ctx, args)
	if err != nil || !b.Locked || !b.Send || b.Attempt.State != StateSending || b.Attempt.Sends != 1 {
		t.Fatalf("first begin = %+v, %v", b, err)
	}
	if b2, _ := s.Begin(ctx, BeginArgs{ID: "ld_q", Token: "t2", Now: now, LockTTL: time.Minute, RecordTTL: time.Hour}); b2.Busy <= 0 {
		t.Fatalf("second begin while locked = %+v, want busy", b2)
	}
	// Nothing was sent after all (the circuit was open).
	if _, err := s.Release(ctx, "ld_q", "t1", Release{Mode: ReleaseUnsend}); err != nil {
		t.Fatal(err)
	}
	if n := rc.Exists(ctx, AttemptKey("ld_q"), LockKey("ld_q")).Val(); n != 0 {
		t.Fatalf("an unsent first attempt left %d keys", n)
	}
	// An add without a clear answer leaves the lead uncertain.
	if _, err := s.Begin(ctx, args); err != nil {
		t.Fatal(err)
	}
	settle := now.Add(time.Minute)
	if _, err := s.Release(ctx, "ld_q", "t1", Release{Mode: ReleaseSet, State: StateUncertain, SettleAt: settle}); err != nil {
		t.Fatal(err)
	}
	if err := rc.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b, err = s.Begin(ctx, args)
	if err != nil || !b.Locked || b.Send || !b.Attempt.Uncertain() || b.Attempt.SettleAt.UnixMilli() != settle.UnixMilli() {
		t.Fatalf("begin of an uncertain lead after a script flush = %+v, %v", b, err)
	}
	if err := rc.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f, err := s.Finish(ctx, FinishArgs{Marker: Marker{CRMID: 7, LeadID: "ld_q", Site: "shop", Sum: "s", At: now},
		Token: "t1", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01"})
	if err != nil || f.Old != nil || f.ClaimedBy != "" {
		t.Fatalf("finish = %+v, %v", f, err)
	}
	if n, _ := s.DeliveredOn(ctx, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); n != 1 {
		t.Errorf("delivered that day = %d, want 1 (a script flush must not count twice)", n)
	}
	b, err = s.Begin(ctx, args)
	if err != nil || b.Marker == nil || b.Marker.CRMID != 7 || b.Marker.Sum != "s" {
		t.Fatalf("begin of a delivered lead = %+v, %v", b, err)
	}
}

// TestAsynqQueueKeys: the backlog read from asynq's keys is what asynq's
// own inspector counts, so an asynq upgrade that renames them fails here.
func TestAsynqQueueKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rc := redistest.Start(t).Client()
	cl := asynq.NewClientFromRedisClient(rc)
	for i, opt := range []asynq.Option{asynq.Queue("leads"), asynq.ProcessIn(time.Hour)} {
		for j := range 3 {
			task := asynq.NewTask("lead:deliver", nil, asynq.Queue("leads"), asynq.TaskID(fmt.Sprintf("t%d-%d", i, j)), opt)
			if _, err := cl.Enqueue(task); err != nil {
				t.Fatal(err)
			}
		}
	}
	qi, err := asynq.NewInspectorFromRedisClient(rc).GetQueueInfo("leads")
	if err != nil {
		t.Fatal(err)
	}
	_, total, err := New(rc).Backlog(ctx, "leads", "shop")
	want := int64(qi.Pending + qi.Active + qi.Scheduled + qi.Retry)
	if err != nil || total != want || want != 6 {
		t.Errorf("Backlog total = %d, %v; asynq counts %d (want 6)", total, err, want)
	}
	if n, err := rc.Exists(ctx, AsynqTaskKey("leads", "t0-0")).Result(); err != nil || n != 1 {
		t.Errorf("AsynqTaskKey names no task: %d, %v", n, err)
	}
}

// TestMarkerForms: a compact marker reads back as written (its lead id
// from its key, its digest cut to 64 bits that still tell other content
// from a repeat); JSON markers of earlier versions still read.
func TestMarkerForms(t *testing.T) {
	t.Parallel()
	sum := "f329f923d26fa3ab0123456789abcdef0123456789abcdef0123456789abcdef"
	at := time.UnixMilli(1764583200123).UTC()
	tests := []struct {
		name, raw string
		want      Marker
	}{
		{"compact", Marker{CRMID: 940, At: at, Site: "shop|with|bars", Sum: sum, Via: "reconcile"}.encode(),
			Marker{CRMID: 940, At: at, LeadID: "ld_x", Site: "shop|with|bars", Sum: sum[:16], Via: "reconcile"}},
		{"compact, plain add", Marker{CRMID: 7, At: at, Site: "shop", Sum: sum}.encode(),
			Marker{CRMID: 7, At: at, LeadID: "ld_x", Site: "shop", Sum: sum[:16]}},
		{"JSON of the earlier version", `{"crm_id":5,"at":"2026-12-01T10:00:00.123Z","lead_id":"ld_x","site":"shop","sum":"` + sum + `"}`,
			Marker{CRMID: 5, At: time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC), LeadID: "ld_x", Site: "shop", Sum: sum}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMarkerOf("ld_x", tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			m.raw = ""
			if *m != tc.want {
				t.Errorf("parsed %+v, want %+v", *m, tc.want)
			}
			if !strings.HasPrefix(sum, m.Sum) {
				t.Errorf("sum %q kept as %q, not its leading part (lead.SameContent compares that)", sum, m.Sum)
			}
		})
	}
	if len(Marker{CRMID: 123456789, At: at, Site: "shop", Sum: sum}.encode()) > 60 {
		t.Errorf("compact marker longer than 60 bytes")
	}
}

// TestClaimOfTheVersionBefore: a CRM id that the version before claimed
// under its own key stays that lead's.
func TestClaimOfTheVersionBefore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rc := redistest.Start(t).Client()
	rc.Set(ctx, LegacyClaimKey(941), "ld_old", time.Hour)
	if got, err := New(rc).Claim(ctx, 941, "ld_new", time.Hour); err != nil || got {
		t.Errorf("Claim of an id claimed by the version before = %v, %v; want false", got, err)
	}
}

// TestFinishCountsOnce: a Finish retried after its answer was lost (the
// script ran) takes the lead out of its site's backlog and counts the
// day's delivery once, in all and for its site (with the site's last
// delivery: the ops page's figures), on a single primary.
func TestFinishCountsOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	rc.HSet(ctx, BacklogKey("leads"), "shop", 2)
	rc.LPush(ctx, asynqQueueKeys("leads")[0], "other")
	a := FinishArgs{Queue: "leads", Marker: Marker{LeadID: "ld_1", Site: "shop", CRMID: 9, At: time.Now()},
		Token: "t", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01"}
	for i := range 2 {
		if f, err := s.Finish(ctx, a); err != nil || (i == 1) != (f.Old != nil) {
			t.Fatalf("Finish %d = %+v, %v", i, f, err)
		}
	}
	n, _, err := s.Backlog(ctx, "leads", "shop")
	day, _ := s.DeliveredOn(ctx, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || n != 1 || day != 1 {
		t.Errorf("after two Finish calls: backlog %d (%v), delivered %d; want 1, 1", n, err, day)
	}
	sites, err := s.Deliveries(ctx, time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC))
	if got := sites["shop"]; err != nil || len(sites) != 1 || got.Today != 1 || got.Last.UnixMilli() != a.Marker.At.UnixMilli() {
		t.Errorf("the site's deliveries after two Finish calls = %+v, %v; want shop: 1 today, last at %s", sites, err, a.Marker.At)
	}
}

// TestFinishCountersExpire: the day's counters, all and the sites', get
// their TTL from the delivery that creates them (or a site's first of the
// day), and deliveries after it leave them one: no day's keys stay for ever.
func TestFinishCountersExpire(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	for i, site := range []string{"shop", "shop", "other"} {
		a := FinishArgs{Queue: "leads", Marker: Marker{LeadID: fmt.Sprintf("ld_e%d", i), Site: site, CRMID: int64(20 + i), At: time.Now()},
			Token: "t", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01"}
		if _, err := s.Finish(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{DeliveredCountKey("2026-12-01"), DeliveredSitesKey("2026-12-01")} {
		if ttl := rc.PTTL(ctx, k).Val(); ttl <= 0 || ttl > dayCounterTTL {
			t.Errorf("TTL of %s after three deliveries = %s, want within %s", k, ttl, dayCounterTTL)
		}
	}
}

// TestFinishCountsOnCluster: on a Redis Cluster, where the counters sit
// in other slots than the lead's keys and are pipelined beside its
// script, a delivery counts in the day's counters, all and its site's,
// and sets the site's last delivery (the ops page's figures).
func TestFinishCountsOnCluster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := New(redistest.StartCluster(t, 3).Client())
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a := FinishArgs{Queue: "leads", Marker: Marker{LeadID: "ld_c", Site: "shop", CRMID: 11, At: at},
		Token: "t", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01"}
	if f, err := s.Finish(ctx, a); err != nil || f.Old != nil {
		t.Fatalf("Finish = %+v, %v", f, err)
	}
	day, err := s.DeliveredOn(ctx, at)
	sites, serr := s.Deliveries(ctx, at)
	if got := sites["shop"]; err != nil || serr != nil || day != 1 || got.Today != 1 || !got.Last.Equal(at) {
		t.Errorf("after Finish on a cluster: delivered %d (%v), the site's %+v (%v); want 1, and shop 1 at %s", day, err, sites, serr, at)
	}
}

// TestRunsCounted: every run that spent an attempt or ended the lead is
// counted in its attempt record, with the last failure's reason; a
// delivery keeps the count, its own run counted once however often Finish
// is retried; a lead delivered at its first run keeps no record.
func TestRunsCounted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	down := delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503}
	tests := []struct {
		name     string
		failures []bool // each failed run: spent an attempt?
		runs     int    // after the delivery (0: no record)
	}{
		{"delivered at once", nil, 0},
		{"postponed only", []bool{false, false}, 0},
		{"dead, then re-run", []bool{true}, 2},
		{"two retries and a postponement", []bool{true, false, true}, 3},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("ld_runs%d", i)
			b := BeginArgs{ID: id, Token: "t", Now: time.Now(), LockTTL: time.Minute, RecordTTL: time.Hour}
			want := 0
			for _, spent := range tc.failures {
				if _, err := s.Begin(ctx, b); err != nil {
					t.Fatal(err)
				}
				_, _ = s.Release(ctx, id, "t", Release{Mode: ReleaseSet, State: StateFailed})
				n, _, err := s.Failed(ctx, id, "t", down, spent, time.Hour)
				if spent {
					want++
				}
				if err != nil || n != want {
					t.Fatalf("Failed = %d, %v; want %d", n, err, want)
				}
			}
			if a, err := s.ReadAttempt(ctx, id); err != nil || a.Runs != want || (len(tc.failures) > 0) != (a.Reason == down) {
				t.Fatalf("before the delivery: %+v, %v", a, err)
			}
			if _, err := s.Begin(ctx, b); err != nil {
				t.Fatal(err)
			}
			for range 2 { // a Finish retried after a lost answer
				if _, err := s.Finish(ctx, FinishArgs{Marker: Marker{LeadID: id, CRMID: 7, At: time.Now()}, Token: "t",
					TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01"}); err != nil {
					t.Fatal(err)
				}
			}
			a, err := s.ReadAttempt(ctx, id)
			if err != nil || a.Runs != tc.runs || a.State != "" || !a.Reason.IsZero() {
				t.Errorf("after the delivery: %+v, %v; want %d runs and nothing else", a, err, tc.runs)
			}
			if ttl := rc.PTTL(ctx, AttemptKey(id)).Val(); tc.runs > 0 && ttl <= 0 {
				t.Errorf("kept record without a TTL: %v", ttl)
			}
		})
	}
}

// TestSiteShare: Admit charges each lead's bytes to its site's share of
// Redis's memory and refuses a lead past it (ShareFull, the bytes kept),
// whatever the site's count of undelivered leads; another site's share is
// its own; a refund gives a lead's bytes back; and a charge is forgotten
// once its lead could no longer be kept (Keep after its admission).
func TestSiteShare(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := startStore(t)
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	const keep = 24 * time.Hour
	admit := func(site string, at time.Time) Admitted {
		t.Helper()
		ad, err := s.Admit(ctx, AdmitArgs{Queue: "leads", ID: "ld_" + site + at.String(), Site: site,
			Bytes: 40, ShareMax: 100, Now: at, Keep: keep})
		if err != nil {
			t.Fatal(err)
		}
		return ad
	}
	steps := []struct {
		name string
		site string
		at   time.Time
		want Admission
		kept int64
	}{
		{"first", "shop", t0, Reserved, 0},
		{"second, an hour on", "shop", t0.Add(time.Hour), Reserved, 0},
		{"third: past the share", "shop", t0.Add(2 * time.Hour), ShareFull, 80},
		{"another site", "blog", t0.Add(2 * time.Hour), Reserved, 0},
		{"the first charge forgotten", "shop", t0.Add(keep + 90*time.Minute), Reserved, 0},
		{"full again", "shop", t0.Add(keep + 90*time.Minute), ShareFull, 80},
	}
	for _, st := range steps {
		if ad := admit(st.site, st.at); ad.Admission != st.want || ad.Kept != st.kept {
			t.Fatalf("%s: %+v, want %v with %d bytes kept", st.name, ad, st.want, st.kept)
		}
	}
	if err := s.Refund(ctx, AdmitArgs{Queue: "leads", Site: "shop", Bytes: 40, ShareMax: 100, Now: t0.Add(keep + 90*time.Minute), Keep: keep}); err != nil {
		t.Fatal(err)
	}
	if ad := admit("shop", t0.Add(keep+90*time.Minute)); ad.Admission != Reserved {
		t.Errorf("after a refund: %+v, want Reserved", ad)
	}
}
