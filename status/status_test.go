package status_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/status"
)

var (
	unreachable = delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503}
	rejected    = delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}
)

// fakeWorker runs a tiny asynq server whose handler succeeds, fails or gives
// up according to the lead's title, recording what the worker records.
func fakeWorker(t *testing.T, rc redis.UniversalClient, queue string) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{
		Queues:                   map[string]int{queue: 1},
		Concurrency:              2,
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: time.Hour,
		ShutdownTimeout:          time.Second,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:                   zap.NewNop().Sugar(),
	})
	store := rdb.New(rc)
	h := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		p, err := lead.ParsePayload(task.Payload())
		if err != nil {
			return err
		}
		switch p.Lead.Title {
		case "ok":
			_, err := store.Finish(ctx, rdb.FinishArgs{Marker: rdb.Marker{CRMID: 940, LeadID: p.ID, Site: p.Site,
				At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-01-02"})
			return err
		case "dead":
			if _, _, err := store.Failed(ctx, p.ID, "fake", rejected, true, time.Hour); err != nil {
				return err
			}
			return errors.Join(errors.New(rejected.String()), asynq.SkipRetry)
		case "unrecorded":
			return errors.New("crm answered 503")
		default:
			if _, _, err := store.Failed(ctx, p.ID, "fake", unreachable, true, time.Hour); err != nil {
				return err
			}
			return errors.New(unreachable.String())
		}
	})
	if err := srv.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

func waitState(t *testing.T, r *status.Reader, site, id string, state delivery.State) status.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := r.ForSite(t.Context(), site, id)
		if err == nil && st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("lead %s: state %q, %v; want %q", id, st.State, err, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publish(t *testing.T, p *producer.Publisher, title string) string {
	t.Helper()
	rc, err := p.Publish(t.Context(), "shop", lead.Lead{Title: title}, "")
	if err != nil {
		t.Fatal(err)
	}
	return rc.ID
}

func TestStatus(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	p := producer.New(rc, producer.Options{Queue: "status", MaxRetry: 3}, nil)
	idle := producer.New(rc, producer.Options{Queue: "idle"}, nil)
	t.Cleanup(func() { _ = p.Close(); _ = idle.Close() })
	ok, fail, dead, unrecorded, pending := publish(t, p, "ok"), publish(t, p, "fail"), publish(t, p, "dead"),
		publish(t, p, "unrecorded"), publish(t, idle, "pending")
	fakeWorker(t, rc, "status")
	reader, idleReader := status.New(rc, "status"), status.New(rc, "idle")

	tests := []struct {
		name     string
		r        *status.Reader
		id       string
		state    delivery.State
		attempts int
		crmID    int64
		reason   delivery.Code
	}{
		{"pending", idleReader, pending, delivery.Queued, 0, 0, ""},
		{"retry", reader, fail, delivery.Retrying, 1, 0, delivery.CRMUnreachable},
		{"retry by a worker that records no reason", reader, unrecorded, delivery.Retrying, 1, 0, delivery.Unrecorded},
		{"archived", reader, dead, delivery.Dead, 1, 0, delivery.CRMRejected},
		{"completed", reader, ok, delivery.Delivered, 1, 940, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := waitState(t, tc.r, "shop", tc.id, tc.state)
			if st.ID != tc.id || st.Site != "shop" || st.Attempts != tc.attempts || st.CRMID != tc.crmID || st.Reason.Code != tc.reason {
				t.Errorf("Status = %+v", st)
			}
			if st.ReceivedAt.IsZero() || st.UpdatedAt.Before(st.ReceivedAt) {
				t.Errorf("timestamps: %+v", st)
			}
			if (tc.state == delivery.Queued || tc.state == delivery.Retrying) == st.NextAttemptAt.IsZero() {
				t.Errorf("NextAttemptAt = %v in state %s", st.NextAttemptAt, st.State)
			}
			if (tc.state == delivery.Delivered) == st.DeliveredAt.IsZero() {
				t.Errorf("DeliveredAt = %v in state %s", st.DeliveredAt, st.State)
			}
			if _, err := tc.r.ForSite(t.Context(), "blog", tc.id); !errors.Is(err, status.ErrNotFound) {
				t.Errorf("another site's Status = %v, want ErrNotFound", err)
			}
			if got, err := p.Status(t.Context(), "shop", tc.id); tc.r == reader && (err != nil || got.State != st.State) {
				t.Errorf("the producer's Status = %+v, %v; want the status package's", got, err)
			}
		})
	}
}

// TestStatusWithoutTask: once asynq no longer holds the task, the
// delivered marker or the dead-letter store answers.
func TestStatusWithoutTask(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	p := producer.New(rc, producer.Options{Queue: "marker"}, nil)
	t.Cleanup(func() { _ = p.Close() })
	ctx := t.Context()
	r := status.New(rc, "marker")
	delivered, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann"}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	// The task expires; only the worker's marker remains.
	if err := asynq.NewInspectorFromRedisClient(rc).DeleteTask("marker", delivered.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ForSite(ctx, "shop", delivered.ID); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("Status without marker = %v, want ErrNotFound", err)
	}
	rc.Set(ctx, rdb.DeliveredKey(delivered.ID), `{"crm_id":123,"site":"shop","at":"2026-01-02T03:04:05Z"}`, time.Hour)
	orphan := lead.ID("blog", "k9")
	rc.Set(ctx, rdb.DeliveredKey(orphan), `{"crm_id":5,"at":"2026-01-02T03:04:05Z"}`, time.Hour)
	trimmed := lead.NewPayload("shop", "k2", lead.Lead{Title: "Bob"}, time.Now())
	if err := deadletter.New(rc).Put(ctx, deadletter.Record{LeadID: trimmed.ID, Site: "shop", Queue: "marker",
		Reason: rejected, Attempts: 3}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, site, id string
		wantErr        error
		state          delivery.State
		crmID          int64
		attempts       int
	}{
		{"own lead", "shop", delivered.ID, nil, delivery.Delivered, 123, 1},
		{"another site's", "blog", delivered.ID, status.ErrNotFound, "", 0, 0},
		{"a marker naming no site", "blog", orphan, status.ErrNotFound, "", 0, 0},
		{"malformed id", "shop", "ld_../../x", status.ErrNotFound, "", 0, 0},
		{"unknown id", "shop", lead.ID("shop", "nope"), status.ErrNotFound, "", 0, 0},
		{"trimmed from the archive", "shop", trimmed.ID, nil, delivery.Dead, 0, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := r.ForSite(ctx, tc.site, tc.id)
			if !errors.Is(err, tc.wantErr) || err == nil && (st.State != tc.state || st.CRMID != tc.crmID || st.Attempts != tc.attempts) {
				t.Errorf("Status = %+v, %v", st, err)
			}
		})
	}
}
