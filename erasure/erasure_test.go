package erasure_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/erasure"
	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// enqueue queues p's task on queue "erase".
func enqueue(t *testing.T, rc redis.UniversalClient, p lead.Payload) {
	t.Helper()
	task, err := lead.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(rc).Enqueue(task, lead.TaskOptions("erase", 3, time.Hour)...); err != nil {
		t.Fatal(err)
	}
}

// TestEraseRunningLead: a lead whose delivery is running (asynq's active
// state) is not erased under its worker, which holds the payload and
// writes it back when the run ends: Erase waits Options.Wait, reports it
// unreached and leaves it; once the run ends, erasing again deletes it.
func TestEraseRunningLead(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	p := lead.NewPayload("shop", "order-1", lead.Lead{Title: "Ann", Email: "ann@example.org"}, time.Now())
	enqueue(t, rc, p)
	running, release := make(chan struct{}), make(chan struct{})
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: map[string]int{"erase": 1}, Concurrency: 1})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		close(running)
		<-release
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	select {
	case <-running:
	case <-time.After(20 * time.Second):
		t.Fatal("the task never ran")
	}
	e := erasure.New(rc, erasure.Options{Queue: "erase", Wait: 200 * time.Millisecond})
	ctx := t.Context()
	rep, err := e.Erase(ctx, erasure.Query{Email: "ANN@example.org"})
	if err != nil || rep.Unreached != 1 || rep.Tasks != 0 || rep.Leads[0].Unreached != "running" {
		t.Fatalf("erase while running = %+v, %v; want it unreached", rep, err)
	}
	close(release)
	insp := asynq.NewInspectorFromRedisClient(rc)
	if !hatest.WaitFor(20*time.Second, 20*time.Millisecond, func() bool {
		info, err := insp.GetTaskInfo("erase", p.ID)
		return err == nil && info.State == asynq.TaskStateCompleted
	}) {
		t.Fatal("the run never completed")
	}
	rep, err = e.Erase(ctx, erasure.Query{IDs: []string{p.ID}})
	if err != nil || rep.Tasks != 1 || rep.Leads[0].Task != "completed" || rep.Unreached != 0 {
		t.Fatalf("erase after the run = %+v, %v; want its completed task deleted", rep, err)
	}
	if _, err := insp.GetTaskInfo("erase", p.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("the task after its erasure: %v; want not found", err)
	}
}

// TestEraseQuery: a query that names nothing is refused; one that finds
// nothing erases nothing.
func TestEraseQuery(t *testing.T) {
	t.Parallel()
	e := erasure.New(redistest.Start(t).Client(), erasure.Options{})
	tests := []struct {
		name string
		q    erasure.Query
		err  error
	}{
		{"nothing named", erasure.Query{}, erasure.ErrQuery},
		{"too short a phone", erasure.Query{Phone: "12"}, erasure.ErrQuery},
		{"unknown id", erasure.Query{IDs: []string{"ld_000000000000000000000000"}}, nil},
		{"unknown e-mail", erasure.Query{Email: "nobody@example.org"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := e.Erase(t.Context(), tt.q)
			if !errors.Is(err, tt.err) || len(rep.Leads) != 0 {
				t.Errorf("Erase = %+v, %v; want no lead, %v", rep, err, tt.err)
			}
		})
	}
}

// TestEraseByPhoneIsExact: erasing a person by phone deletes the leads
// with that number only (+7 and 8 before it are one number), never
// another person's whose number merely ends alike: a search may match
// loosely, a deletion may not, or a lead accepted from someone else is
// lost.
func TestEraseByPhoneIsExact(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	e := erasure.New(rc, erasure.Options{Queue: "erase"})
	phones := map[string]string{"ann": "+7 900 123-45-67", "ann-trunk": "8 (900) 123-45-67",
		"us": "+1 900 123 4567", "other-area": "+7 911 123-45-67"}
	ids := map[string]string{}
	for key, phone := range phones {
		p := lead.NewPayload("shop", key, lead.Lead{Title: key, Phone: phone}, time.Now())
		enqueue(t, rc, p)
		ids[p.ID] = key
	}
	tests := []struct {
		phone string
		want  []string
	}{
		{"123-45-67", nil}, // the end of four numbers, none of them this one
		{"+7 (900) 1234567", []string{"ann", "ann-trunk"}},
	}
	for _, tt := range tests {
		rep, err := e.Erase(t.Context(), erasure.Query{Phone: tt.phone, By: "test"})
		if err != nil {
			t.Fatalf("Erase(%q): %v", tt.phone, err)
		}
		var got []string
		for _, l := range rep.Leads {
			got = append(got, ids[l.ID])
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Erase(phone %q) erased %v, want %v", tt.phone, got, tt.want)
		}
	}
}
