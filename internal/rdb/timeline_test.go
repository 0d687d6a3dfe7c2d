package rdb

import (
	"strings"
	"testing"
	"time"

	"leadrelay/delivery"
)

// TestTimeline: each run is one entry, oldest first, with what it did;
// postponements for one reason in a row fold into one entry; a run that
// lost the lead to another is recorded as fenced; the timeline keeps the
// newest TimelineCap runs and lives the TTL it was last written with; the
// CRM's own text (a reason's Detail) is not kept.
func TestTimeline(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const id = "ld_t"
	s, rc := startStore(t)
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	unreachable := delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503}
	circuit := delivery.Reason{Code: delivery.CircuitOpen}
	record := func(token string, r delivery.Run) Fence {
		t.Helper()
		f, err := s.RecordRun(ctx, id, token, r, time.Hour)
		must(t, err)
		return f
	}
	begin := func(token string) {
		t.Helper()
		if _, err := s.Begin(ctx, BeginArgs{ID: id, Token: token, Now: t0, LockTTL: time.Minute, RecordTTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	begin("A")
	// The CRM's own text may repeat a lead's fields: the timeline keeps
	// the reason's code and numbers, not its Detail.
	withText := unreachable
	withText.Detail = "ann@example.org: 503 Service Unavailable"
	record("A", delivery.Run{At: t0, Worker: "w1:1", End: delivery.RunRetry, Reason: withText, Duration: 120 * time.Millisecond, Adds: 1})
	for i := range 3 {
		record("A", delivery.Run{At: t0.Add(time.Duration(i+1) * time.Minute), Worker: "w1:1", End: delivery.RunPostponed, Reason: circuit})
	}
	if _, err := s.Release(ctx, id, "A", Release{Mode: ReleaseKeep}); err != nil {
		t.Fatal(err)
	}
	begin("B") // B takes the lead over; A's late entry is fenced
	if f := record("A", delivery.Run{At: t0.Add(4 * time.Minute), Worker: "w1:1", End: delivery.RunRetry, Reason: unreachable}); f != Fenced {
		t.Errorf("A's entry after B began: %v, want Fenced", f)
	}
	if f := record("B", delivery.Run{At: t0.Add(5 * time.Minute), Worker: "w2:7", End: delivery.RunDelivered, CRMID: 42, LookUps: 1, Adds: 1}); f != Owned {
		t.Errorf("B's entry: %v, want Owned", f)
	}
	runs, err := s.Runs(ctx, id)
	must(t, err)
	want := []delivery.Run{
		{At: t0, Worker: "w1:1", End: delivery.RunRetry, Reason: unreachable, Duration: 120 * time.Millisecond, Adds: 1},
		{At: t0.Add(time.Minute), LastAt: t0.Add(3 * time.Minute), Worker: "w1:1", End: delivery.RunPostponed, Reason: circuit, Repeats: 2},
		{At: t0.Add(4 * time.Minute), Worker: "w1:1", End: delivery.RunRetry, Reason: unreachable, Fenced: true},
		{At: t0.Add(5 * time.Minute), Worker: "w2:7", End: delivery.RunDelivered, CRMID: 42, LookUps: 1, Adds: 1},
	}
	if len(runs) != len(want) {
		t.Fatalf("timeline = %+v, want %d runs", runs, len(want))
	}
	for i := range want {
		if runs[i] != want[i] {
			t.Errorf("run %d = %+v\nwant %+v", i, runs[i], want[i])
		}
	}
	if ttl := rc.PTTL(ctx, TimelineKey(id)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("timeline TTL = %v, want the record TTL", ttl)
	}
	for i := range TimelineCap + 5 {
		record("B", delivery.Run{At: t0.Add(time.Duration(10+i) * time.Minute), End: delivery.RunRetry, Reason: unreachable})
	}
	runs, err = s.Runs(ctx, id)
	must(t, err)
	if len(runs) != TimelineCap || !runs[len(runs)-1].At.Equal(t0.Add(time.Duration(10+TimelineCap+4)*time.Minute)) {
		t.Errorf("capped timeline: %d runs, the last at %v; want %d, the newest kept", len(runs), runs[len(runs)-1].At, TimelineCap)
	}
	none, err := s.Runs(ctx, "ld_none")
	if err != nil || len(none) != 0 {
		t.Errorf("timeline of an unknown lead: %v, %v", none, err)
	}
}

// TestFinishRecordsRun: Finish puts the delivering run on the timeline
// and keeps the CRM id as the task's result in the same script, once
// however often it is retried, and writes no result into a task asynq
// does not hold (it would make a stray hash). A plain first add writes no
// timeline at all: the marker implies its entry, which Runs reads back.
func TestFinishRecordsRun(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	at := t0.Add(30 * time.Millisecond)
	plain := delivery.Run{At: t0, Worker: "w1:1", End: delivery.RunDelivered, CRMID: 42, Adds: 1, Duration: 30 * time.Millisecond}
	looked := plain
	looked.LookUps = 1
	implied := delivery.Run{At: at, End: delivery.RunDelivered, CRMID: 42, Adds: 1}
	before := delivery.Run{At: t0.Add(-time.Minute), Worker: "w2:2", End: delivery.RunRetry,
		Reason: delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503}, Adds: 1}
	for _, tc := range []struct {
		name  string
		task  bool           // asynq holds the lead's task
		run   delivery.Run   // the delivering run
		prior *delivery.Run  // a run recorded before it
		list  bool           // a timeline list is kept
		want  []delivery.Run // Runs afterwards
	}{
		{"plain add, task held", true, plain, nil, false, []delivery.Run{implied}},
		{"plain add, no task", false, plain, nil, false, []delivery.Run{implied}},
		{"look-up", true, looked, nil, true, []delivery.Run{looked}},
		{"after a retry", true, plain, &before, true, []delivery.Run{before, plain}},
	} {
		id := "ld_fin_" + strings.NewReplacer(" ", "_", ",", "").Replace(tc.name)
		taskKey := AsynqTaskKey("leads", id)
		if tc.task {
			must(t, rc.HSet(ctx, taskKey, "state", "active").Err())
		}
		if _, err := s.Begin(ctx, BeginArgs{ID: id, Token: "A", Now: t0, LockTTL: time.Minute, RecordTTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if tc.prior != nil {
			_, err := s.RecordRun(ctx, id, "A", *tc.prior, time.Hour)
			must(t, err)
		}
		run := tc.run
		a := FinishArgs{Marker: Marker{CRMID: 42, LeadID: id, Site: "shop", At: at}, Queue: "leads", Token: "A",
			TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-07", Run: &run, Result: "42"}
		for range 2 { // the second is a Finish retried after a lost answer
			f, err := s.Finish(ctx, a)
			must(t, err)
			if !f.ResultKept || f.Fence != Owned {
				t.Errorf("%s: Finish = %+v, want the result kept, owned", tc.name, f)
			}
		}
		if got := rc.Exists(ctx, TimelineKey(id)).Val() == 1; got != tc.list {
			t.Errorf("%s: timeline list kept %v, want %v", tc.name, got, tc.list)
		}
		runs, err := s.Runs(ctx, id)
		must(t, err)
		if len(runs) != len(tc.want) {
			t.Fatalf("%s: timeline %+v, want %+v", tc.name, runs, tc.want)
		}
		for i := range runs {
			if runs[i] != tc.want[i] {
				t.Errorf("%s: run %d = %+v, want %+v", tc.name, i, runs[i], tc.want[i])
			}
		}
		res, err := rc.HGet(ctx, taskKey, "result").Result()
		switch {
		case tc.task && (err != nil || res != "42"):
			t.Errorf("%s: task result %q, %v; want 42", tc.name, res, err)
		case !tc.task && rc.Exists(ctx, taskKey).Val() != 0:
			t.Errorf("%s: a result was written into a task asynq does not hold", tc.name)
		}
	}
}

// TestImpliedRunAfterDuplicate: a lead delivered by a plain first add
// keeps no timeline; a later run that finds it delivered records its
// entry, and Runs still shows the delivering run first, from the marker.
func TestImpliedRunAfterDuplicate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := startStore(t)
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const id = "ld_implied_dup"
	if _, err := s.Begin(ctx, BeginArgs{ID: id, Token: "A", Now: t0, LockTTL: time.Minute, RecordTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	run := delivery.Run{At: t0, Worker: "w1:1", End: delivery.RunDelivered, CRMID: 7, Adds: 1}
	_, err := s.Finish(ctx, FinishArgs{Marker: Marker{CRMID: 7, LeadID: id, At: t0.Add(time.Second)}, Queue: "leads",
		Token: "A", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-07", Run: &run})
	must(t, err)
	dup := delivery.Run{At: t0.Add(time.Minute), Worker: "w2:2", End: delivery.RunDuplicate}
	_, err = s.RecordRun(ctx, id, "B", dup, time.Hour)
	must(t, err)
	runs, err := s.Runs(ctx, id)
	must(t, err)
	want := []delivery.Run{{At: t0.Add(time.Second), End: delivery.RunDelivered, CRMID: 7, Adds: 1}, dup}
	if len(runs) != 2 || runs[0] != want[0] || runs[1] != want[1] {
		t.Errorf("timeline %+v\nwant %+v", runs, want)
	}
}

// TestFailedRecordsRun: a failed run's reason and its timeline entry are
// one script; a run that lost the lead to another writes its entry,
// marked fenced, and not its reason.
func TestFailedRecordsRun(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	down := delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503}
	t0 := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	const id = "ld_failed_run"
	s, rc := startStore(t)
	for _, token := range []string{"A", "B"} {
		if _, err := s.Begin(ctx, BeginArgs{ID: id, Token: token, Now: t0, LockTTL: time.Minute, RecordTTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		must(t, rc.Del(ctx, LockKey(id)).Err()) // B takes the lead over from A
	}
	runA := delivery.Run{At: t0, Worker: "w1:1", End: delivery.RunRetry, Reason: down, Adds: 1}
	if _, f, err := s.FailedRun(ctx, id, "A", down, true, time.Hour, &runA); err != nil || f != Fenced {
		t.Fatalf("A's failed run: %v, %v; want Fenced", f, err)
	}
	runB := delivery.Run{At: t0.Add(time.Minute), Worker: "w2:2", End: delivery.RunRetry, Reason: down, Adds: 1}
	if n, f, err := s.FailedRun(ctx, id, "B", down, true, time.Hour, &runB); err != nil || f != Owned || n != 1 {
		t.Fatalf("B's failed run: %d, %v, %v; want 1 run, Owned", n, f, err)
	}
	runs, err := s.Runs(ctx, id)
	must(t, err)
	runA.Fenced = true
	if len(runs) != 2 || runs[0] != runA || runs[1] != runB {
		t.Errorf("timeline %+v\nwant %+v, %+v", runs, runA, runB)
	}
}
