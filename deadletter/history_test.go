package deadletter

import (
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/delivery"
	"leadrelay/lead"
)

// TestHistoryAcrossRequeues: a lead that dies, is requeued and dies again
// keeps every attempt and error since it arrived (the issue saw Attempts 1
// and one entry after two failed requeues), whether the worker counts its
// attempts across re-runs (this version) or from 1 after each requeue (the
// previous version, as asynq does); one delivered after a requeue leaves
// no history behind.
func TestHistoryAcrossRequeues(t *testing.T) {
	t.Parallel()
	for _, spans := range []bool{true, false} {
		t.Run(fmt.Sprintf("counts across re-runs %v", spans), func(t *testing.T) {
			t.Parallel()
			historyAcrossRequeues(t, spans)
		})
	}
}

func historyAcrossRequeues(t *testing.T, spans bool) {
	ctx := t.Context()
	s, rdb := newStore(t, Options{})
	insp := asynq.NewInspectorFromRedisClient(rdb)
	why := func(text string) delivery.Reason {
		return delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: text}
	}
	r := record(t, "shop", "again", t0)
	r.Attempts, r.Reason = 3, why("first death")
	r.Errors = []AttemptError{{At: t0, Attempt: 3, Class: "dead", Reason: why("first death")}}
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	die := func(n int, text string) {
		t.Helper()
		if res, err := s.Requeue(ctx, []string{r.LeadID}, nil); err != nil || res.Requeued() != 1 {
			t.Fatalf("requeue: %+v %v", res, err)
		}
		if err := insp.DeleteTask(lead.DefaultQueue, r.LeadID); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(n) * time.Hour)
		attempt := 1 // as asynq counts a requeued task
		if spans {
			attempt = 3 + n
		}
		next := r
		next.Attempts, next.DeadAt, next.Reason = attempt, at, why(text)
		next.Errors = []AttemptError{{At: at, Attempt: attempt, Class: "dead", Reason: why(text)}}
		if err := s.Put(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	die(1, "second death")
	die(2, "third death")
	got, err := s.Get(ctx, r.LeadID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 5 || len(got.Errors) != 3 || got.Reason != why("third death") {
		t.Fatalf("after two requeues: attempts %d, %d errors, reason %+v; want 5, 3, third death", got.Attempts, len(got.Errors), got.Reason)
	}
	for i, want := range []struct {
		attempt int
		text    string
	}{{3, "first death"}, {4, "second death"}, {5, "third death"}} {
		if e := got.Errors[i]; e.Attempt != want.attempt || e.Reason != why(want.text) {
			t.Errorf("error %d = %+v, want attempt %d %q", i, e, want.attempt, want.text)
		}
	}
	// Requeued and delivered: the history goes with the record.
	if _, err := s.Requeue(ctx, []string{r.LeadID}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, r.LeadID); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, "leadrelay:{dead}:history:"+r.LeadID).Result(); err != nil || n != 0 {
		t.Errorf("history of a delivered lead kept: %d %v", n, err)
	}
}
