package producer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	keys "leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// fakeWorker runs a tiny asynq server whose handler succeeds, fails or gives
// up according to the lead's title.
func fakeWorker(t *testing.T, rdb redis.UniversalClient, queue string) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Queues:                   map[string]int{queue: 1},
		Concurrency:              2,
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: time.Hour,
		ShutdownTimeout:          time.Second,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:                   zap.NewNop().Sugar(),
	})
	h := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		p, err := lead.ParsePayload(task.Payload())
		if err != nil {
			return err
		}
		switch p.Lead.Title {
		case "ok":
			// What the worker records: the delivered marker, through the store.
			_, err := keys.New(rdb).Finish(ctx, keys.FinishArgs{Marker: keys.Marker{CRMID: 940, LeadID: p.ID, Site: p.Site,
				At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-01-02"})
			return err
		case "dead":
			return fmt.Errorf("crm refused the lead: %w", asynq.SkipRetry)
		default:
			return errors.New("crm answered 503")
		}
	})
	if err := srv.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

func waitState(t *testing.T, p *Publisher, site, id, state string) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := p.Status(context.Background(), site, id)
		if err == nil && st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("lead %s: state %q, %v; want %q", id, st.State, err, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client()
	p, _ := newPublisher(t, rdb, Options{Queue: "status", MaxRetry: 3})
	idle, _ := newPublisher(t, rdb, Options{Queue: "idle"})
	ctx := context.Background()
	publish := func(p *Publisher, title string) string {
		r, err := p.Publish(ctx, "shop", lead.Lead{Title: title}, "")
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	ok, fail, dead, pending := publish(p, "ok"), publish(p, "fail"), publish(p, "dead"), publish(idle, "pending")
	fakeWorker(t, rdb, "status")

	tests := []struct {
		name     string
		p        *Publisher
		id       string
		state    string
		attempts int
		crmID    int64
		lastErr  string
	}{
		{"pending", idle, pending, StateQueued, 0, 0, ""},
		{"retry", p, fail, StateRetrying, 1, 0, "crm answered 503"},
		{"archived", p, dead, StateDead, 1, 0, "crm refused the lead: skip retry for the task"},
		{"completed", p, ok, StateDelivered, 1, 940, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := waitState(t, tc.p, "shop", tc.id, tc.state)
			if st.ID != tc.id || st.Site != "shop" || st.Attempts != tc.attempts || st.CRMID != tc.crmID || st.LastError != tc.lastErr {
				t.Errorf("Status = %+v", st)
			}
			if st.ReceivedAt.IsZero() || st.UpdatedAt.Before(st.ReceivedAt) {
				t.Errorf("timestamps: %+v", st)
			}
			if (tc.state == StateQueued || tc.state == StateRetrying) == st.NextAttemptAt.IsZero() {
				t.Errorf("NextAttemptAt = %v in state %s", st.NextAttemptAt, st.State)
			}
			if (tc.state == StateDelivered) == st.DeliveredAt.IsZero() {
				t.Errorf("DeliveredAt = %v in state %s", st.DeliveredAt, st.State)
			}
			if _, err := tc.p.Status(ctx, "blog", tc.id); !errors.Is(err, ErrNotFound) {
				t.Errorf("another site's Status = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestStatusFromMarker(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client()
	p, _ := newPublisher(t, rdb, Options{Queue: "marker"})
	ctx := context.Background()
	r, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann"}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	// The task expires; only the worker's marker remains.
	if err := asynq.NewInspectorFromRedisClient(rdb).DeleteTask("marker", r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Status(ctx, "shop", r.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Status without marker = %v, want ErrNotFound", err)
	}
	rdb.Set(ctx, keys.DeliveredKey(r.ID), `{"crm_id":123,"site":"shop","at":"2026-01-02T03:04:05Z"}`, time.Hour)
	orphan := lead.ID("blog", "k9")
	rdb.Set(ctx, keys.DeliveredKey(orphan), `{"crm_id":5,"at":"2026-01-02T03:04:05Z"}`, time.Hour)
	tests := []struct {
		name, site, id string
		wantErr        error
		crmID          int64
	}{
		{"own lead", "shop", r.ID, nil, 123},
		{"another site's", "blog", r.ID, ErrNotFound, 0},
		{"a marker naming no site", "blog", orphan, ErrNotFound, 0},
		{"malformed id", "shop", "ld_../../x", ErrNotFound, 0},
		{"unknown id", "shop", lead.ID("shop", "nope"), ErrNotFound, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := p.Status(ctx, tc.site, tc.id)
			if !errors.Is(err, tc.wantErr) || (err == nil && (st.State != StateDelivered || st.CRMID != tc.crmID || st.DeliveredAt.IsZero())) {
				t.Errorf("Status = %+v, %v", st, err)
			}
		})
	}
}
