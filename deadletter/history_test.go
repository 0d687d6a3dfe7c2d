package deadletter

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/lead"
)

// TestHistoryAcrossRequeues: a lead that dies, is requeued and dies again
// keeps every attempt and error since it arrived (the issue saw Attempts 1
// and one entry after two failed requeues); one delivered after a requeue
// leaves no history behind.
func TestHistoryAcrossRequeues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, rdb := newStore(t, Options{})
	insp := asynq.NewInspectorFromRedisClient(rdb)
	r := record(t, "shop", "again", t0)
	r.Attempts = 3
	r.Errors = []AttemptError{{At: t0, Attempt: 3, Class: "permanent", Text: "first death"}}
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	die := func(n int, text string) {
		t.Helper()
		// The worker reports the attempt asynq counts: a requeued task
		// starts from 1.
		if res, err := s.Requeue(ctx, []string{r.LeadID}, nil); err != nil || res.Requeued() != 1 {
			t.Fatalf("requeue: %+v %v", res, err)
		}
		if err := insp.DeleteTask(lead.DefaultQueue, r.LeadID); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(n) * time.Hour)
		next := r
		next.Attempts, next.DeadAt, next.Reason = 1, at, text
		next.Errors = []AttemptError{{At: at, Attempt: 1, Class: "permanent", Text: text}}
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
	if got.Attempts != 5 || len(got.Errors) != 3 || got.Reason != "third death" {
		t.Fatalf("after two requeues: attempts %d, %d errors, reason %q; want 5, 3, third death", got.Attempts, len(got.Errors), got.Reason)
	}
	for i, want := range []struct {
		attempt int
		text    string
	}{{3, "first death"}, {4, "second death"}, {5, "third death"}} {
		if e := got.Errors[i]; e.Attempt != want.attempt || e.Text != want.text {
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
