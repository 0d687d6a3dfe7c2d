package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	rdbstore "leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

func newPublisher(t *testing.T, rdb redis.UniversalClient, o Options) (*Publisher, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	p := New(rdb, o, zap.New(core))
	t.Cleanup(func() { _ = p.Close() })
	return p, logs
}

// newMini is an embedded miniredis and a client of it, for tests that
// need no real Redis.
func newMini(t *testing.T) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	m := redistest.Mini(t)
	return m, redistest.NewClient(t, m.Addr())
}

func queueSize(t *testing.T, rdb redis.UniversalClient, queue string) int {
	t.Helper()
	qi, err := asynq.NewInspectorFromRedisClient(rdb).GetQueueInfo(queue)
	if err != nil {
		t.Fatalf("GetQueueInfo(%s): %v", queue, err)
	}
	return qi.Size
}

// enqueueTask puts p's task on queue beside the producer, as an earlier
// version's intake left it.
func enqueueTask(t *testing.T, rc redis.UniversalClient, queue string, p lead.Payload) {
	t.Helper()
	task, err := lead.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(rc).Enqueue(task, lead.TaskOptions(queue, 3, time.Hour)...); err != nil {
		t.Fatal(err)
	}
}

func TestPublishDeduplicates(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client()
	ann := lead.Lead{Title: "Ann", Email: "ann@example.com"}
	type pub struct {
		site, key string
		l         lead.Lead
	}
	tests := []struct {
		name     string
		first    pub
		second   pub
		sameID   bool
		wantDup  bool
		wantErr  error
		wantSize int
	}{
		{"same key twice", pub{"shop", "order-1", ann}, pub{"shop", "order-1", ann}, true, true, nil, 1},
		// Issue 8 case 3: a reused key with another body is refused, never
		// silently dropped as a duplicate.
		{"same key, other content", pub{"shop", "order-1", ann}, pub{"shop", "order-1", lead.Lead{Title: "Bob"}}, true, false, ErrKeyReused, 1},
		{"no key, same content", pub{"shop", "", ann}, pub{"shop", "", lead.Lead{Title: " Ann ", Email: "ann@example.com"}}, true, true, nil, 1},
		{"no key, other content", pub{"shop", "", ann}, pub{"shop", "", lead.Lead{Title: "Bob"}}, false, false, nil, 2},
		{"two sites, same key", pub{"shop", "order-1", ann}, pub{"blog", "order-1", ann}, false, false, nil, 2},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			queue := fmt.Sprintf("dedup%d", i)
			p, _ := newPublisher(t, rdb, Options{Queue: queue})
			ctx := t.Context()
			// Sites are per subtest: leads are remembered by id across queues.
			sfx := fmt.Sprint(i)
			r1, err := p.Publish(ctx, tc.first.site+sfx, tc.first.l, tc.first.key)
			if err != nil || r1.Duplicate || r1.ID == "" {
				t.Fatalf("first Publish = %+v, %v", r1, err)
			}
			r2, err := p.Publish(ctx, tc.second.site+sfx, tc.second.l, tc.second.key)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("second Publish: %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.second.key) {
				t.Errorf("error %q does not name the key", err)
			}
			if (r1.ID == r2.ID) != tc.sameID || r2.Duplicate != tc.wantDup {
				t.Errorf("receipts %+v then %+v; want same id %v, duplicate %v", r1, r2, tc.sameID, tc.wantDup)
			}
			if got := queueSize(t, rdb, queue); got != tc.wantSize {
				t.Errorf("tasks in queue = %d, want %d", got, tc.wantSize)
			}
		})
	}
}

func TestPublishTaskOptions(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client()
	p, _ := newPublisher(t, rdb, Options{Queue: "opts", MaxRetry: 7, DedupTTL: 2 * time.Hour})
	r, err := p.Publish(t.Context(), "shop", lead.Lead{Phone: "+79001234567"}, "k")
	if err != nil {
		t.Fatal(err)
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo("opts", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxRetry != 7+1 || info.Retention != 2*time.Hour || info.Type != lead.TaskType || info.State != asynq.TaskStatePending {
		t.Errorf("task = max retry %d, retention %s, type %s, state %s", info.MaxRetry, info.Retention, info.Type, info.State)
	}
	pl, err := lead.ParsePayload(info.Payload)
	if err != nil || pl.Site != "shop" || pl.Lead.Phone != "+79001234567" || pl.ReceivedAt.IsZero() {
		t.Errorf("payload = %+v, %v", pl, err)
	}
}

func TestPublishInvalid(t *testing.T) {
	t.Parallel()
	m, rdb := newMini(t)
	p, _ := newPublisher(t, rdb, Options{})
	_, err := p.Publish(t.Context(), "shop", lead.Lead{Email: "not-an-address", City: "\xff"}, "")
	var ve *lead.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Fatalf("Publish = %v, want *lead.ValidationError naming city and email", err)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Errorf("invalid lead wrote keys %v", keys)
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	p, _ := newPublisher(t, rdb, Options{})
	ctx := t.Context()
	r, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann"}, "k")
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	tests := []struct {
		name string
		call func() error
	}{
		{"publish", func() error { _, err := p.Publish(ctx, "shop", lead.Lead{Title: "Bob"}, ""); return err }},
		{"status", func() error { _, err := p.Status(ctx, "shop", r.ID); return err }},
		{"ping", func() error { return p.Ping(ctx) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrUnavailable) {
				t.Errorf("error = %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestWaitReplicas(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client()
	p, _ := newPublisher(t, rdb, Options{Queue: "wait", WaitReplicas: 1, WaitTimeout: 20 * time.Millisecond})
	_, err := p.Publish(t.Context(), "shop", lead.Lead{Title: "Ann"}, "k")
	var short *rdbstore.ReplicasError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &short) || short.Got != 0 || short.Want != 1 {
		t.Fatalf("Publish without replicas = %v, want ErrUnavailable", err)
	}
	// The task stays; the site's retry is a duplicate.
	if got := queueSize(t, rdb, "wait"); got != 1 {
		t.Errorf("tasks = %d, want 1", got)
	}
	p0, _ := newPublisher(t, rdb, Options{Queue: "wait"})
	if r, err := p0.Publish(t.Context(), "shop", lead.Lead{Title: "Ann"}, "k"); err != nil || !r.Duplicate {
		t.Errorf("retry = %+v, %v; want duplicate", r, err)
	}
}

// TestWaitReplicasConfirms: with a replica in sync a lead is acknowledged;
// a task that is not on the primary the confirming connection reaches (lost
// in a failover) is not.
func TestWaitReplicasConfirms(t *testing.T) {
	t.Parallel()
	primary := redistest.Start(t)
	redistest.StartReplica(t, primary)
	rc := primary.Client()
	p, _ := newPublisher(t, rc, Options{Queue: "confirm", WaitReplicas: 1, WaitTimeout: 5 * time.Second})
	ctx := t.Context()
	tests := []struct {
		name     string
		loseTask bool
		wantErr  error
	}{
		{"replica holds the lead", false, nil},
		{"task lost before the wait", true, rdbstore.ErrTaskNotOnPrimary},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann", Description: tc.name}, "k"+string(rune('a'+i)))
			if err != nil {
				t.Fatalf("Publish = %v", err)
			}
			if tc.loseTask {
				if err := rc.Del(ctx, rdbstore.AsynqTaskKey("confirm", r.ID)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			err = p.confirm(ctx, r.ID)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("confirm = %v", err)
			case tc.wantErr != nil && (!errors.Is(err, ErrUnavailable) || !errors.Is(err, tc.wantErr)):
				t.Fatalf("confirm = %v, want ErrUnavailable and %v", err, tc.wantErr)
			}
		})
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	_, rdb := newMini(t)
	p, _ := newPublisher(t, rdb, Options{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(t.Context(), "shop", lead.Lead{Title: "Ann"}, ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Publish after Close = %v, want ErrUnavailable", err)
	}
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Errorf("Close closed the caller's client: %v", err)
	}
}

func TestLogsKeepPersonalDataAtDebug(t *testing.T) {
	t.Parallel()
	_, rdb := newMini(t)
	p, logs := newPublisher(t, rdb, Options{})
	l := lead.Lead{Title: "Secret Name", Email: "secret@example.com", Phone: "+79990001122"}
	r, err := p.Publish(t.Context(), "shop", l, "")
	if err != nil {
		t.Fatal(err)
	}
	var sawTrace bool
	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		if e.Level > zapcore.DebugLevel {
			for _, pd := range []string{l.Title, l.Email, l.Phone} {
				if strings.Contains(e.Message+string(line), pd) {
					t.Errorf("%s log line holds personal data: %s %s", e.Level, e.Message, line)
				}
			}
		}
		if e.Level == zapcore.InfoLevel {
			t.Errorf("info line %q: intake's request line is the one info line per lead", e.Message)
		}
		if e.Level == zapcore.DebugLevel && e.Message == "lead published" {
			c := e.ContextMap()
			sawTrace = c["lead_id"] == r.ID && c["site"] == "shop" && c["duplicate"] == false
		}
	}
	if !sawTrace {
		t.Errorf("no debug line with lead_id, site, duplicate: %v", logs.All())
	}
}

// TestPublishKeyReusedAfterTaskExpired: the 422 for a key reused with
// another lead holds after asynq forgot the delivered task (its
// retention), for as long as the delivered marker lives; before, the
// second lead was answered "duplicate" and never delivered (issue 8 case
// 3). A key whose task is gone without a delivery names no lead any more:
// the new lead is accepted, never lost.
func TestPublishKeyReusedAfterTaskExpired(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client()
	p, _ := newPublisher(t, rdb, Options{Queue: "expired"})
	ctx := t.Context()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	r, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann"}, "order-9")
	if err != nil {
		t.Fatal(err)
	}
	// The worker delivers it; asynq forgets the task.
	sum := lead.Lead{Title: "Ann"}
	sum.Normalize()
	if _, err := rdbstore.New(rdb).Finish(ctx, rdbstore.FinishArgs{Queue: "expired", Token: "t", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01",
		Marker: rdbstore.Marker{LeadID: r.ID, Site: "shop", Sum: string(sum.Digest()), CRMID: 4, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := insp.DeleteTask("expired", r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, "shop", lead.Lead{Title: "Bob"}, "order-9"); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("reused key after the task expired: %v, want ErrKeyReused", err)
	}
	// The same lead again is a repeat: delivered, nothing enqueued.
	r2, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann"}, "order-9")
	if err != nil || !r2.Duplicate || r2.ID != r.ID {
		t.Fatalf("repeat = %+v, %v", r2, err)
	}
	if _, err := insp.GetTaskInfo("expired", r.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("a repeat of a delivered lead was enqueued again: %v", err)
	}
	// A task deleted undelivered leaves nothing to collide with.
	r3, err := p.Publish(ctx, "shop", lead.Lead{Title: "Cy"}, "order-10")
	if err != nil {
		t.Fatal(err)
	}
	if err := insp.DeleteTask("expired", r3.ID); err != nil {
		t.Fatal(err)
	}
	if r4, err := p.Publish(ctx, "shop", lead.Lead{Title: "Dee"}, "order-10"); err != nil || r4.Duplicate {
		t.Fatalf("a new lead under a key whose task vanished undelivered = %+v, %v; want accepted", r4, err)
	}
}

// TestKeylessWindow (issue 17, point 6): a lead without an idempotency key
// is named by its content only for LEADRELAY_KEYLESS_WINDOW. The same form
// again within it is a double submit: the same lead, the repeat counted
// and logged. After it, the same text is a new inquiry: a new lead, queued
// for delivery. Before, it was answered with the old id and never
// delivered for as long as the delivered marker lived (30 days).
func TestKeylessWindow(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client()
	const window = 300 * time.Millisecond
	p, logs := newPublisher(t, rdb, Options{Queue: "keyless", KeylessWindow: window})
	ctx := t.Context()
	ann := lead.Lead{Title: "Ann", Email: "ann@example.com", Description: "please call"}
	first, err := p.Publish(ctx, "shop", ann, "")
	if err != nil || first.Duplicate {
		t.Fatalf("first = %+v, %v", first, err)
	}
	again, err := p.Publish(ctx, "shop", ann, "")
	if err != nil || !again.Duplicate || again.ID != first.ID {
		t.Fatalf("repeat within the window = %+v, %v; want the same lead, a duplicate", again, err)
	}
	counted := logs.FilterMessageSnippet("keyless repeat").FilterField(zap.Int("repeats", 1)).Len()
	if counted != 1 {
		t.Errorf("%d log lines count the repeat, want 1", counted)
	}
	if day, err := rdbstore.New(rdb).KeylessRepeatsOn(ctx, time.Now()); err != nil || day["shop"] != 1 {
		t.Errorf("keyless repeats today = %v (%v), want shop 1 (ctl queues shows it)", day, err)
	}
	if _, err := p.Publish(ctx, "shop", ann, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(window + 100*time.Millisecond) // bounded: the window's own length
	later, err := p.Publish(ctx, "shop", ann, "")
	if err != nil || later.Duplicate || later.ID == first.ID {
		t.Fatalf("after the window = %+v, %v; want a new lead", later, err)
	}
	// Each lead's status counts its own repeats (ctl lead status shows
	// them), after the window too.
	for id, want := range map[string]int{first.ID: 2, later.ID: 0} {
		if st, err := p.Status(ctx, "shop", id); err != nil || st.Repeats != want {
			t.Errorf("status of %s: %d repeats (%v), want %d", id, st.Repeats, err, want)
		}
	}
	if got := queueSize(t, rdb, "keyless"); got != 2 {
		t.Errorf("tasks in queue = %d, want 2", got)
	}
}

// TestReceivedOnFleetClock (issue 17, point 2): the time intake received a
// lead is compared by workers (the rollback guard, the look-up's window)
// and by other intakes (the keyless window, the kept-bytes buckets). An
// intake whose host clock ran 5 minutes ahead of Redis's, or behind it,
// stamped its own: a lead received before a rollback looked received
// after it. Now each publisher keeps Redis's time, whatever its host's
// clock says.
func TestReceivedOnFleetClock(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	store := rdbstore.New(rc)
	ctx := t.Context()
	for _, skew := range []time.Duration{5 * time.Minute, -5 * time.Minute, 0} {
		t.Run(skew.String(), func(t *testing.T) {
			p, _ := newPublisher(t, rc, Options{Queue: "clock", Clock: func() time.Time { return time.Now().Add(skew) }})
			before, err := store.Time(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rcpt, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann", Email: "ann@example.com"}, fmt.Sprint("clock-", skew))
			if err != nil {
				t.Fatal(err)
			}
			after, err := store.Time(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st, err := p.Status(ctx, "shop", rcpt.ID)
			if err != nil {
				t.Fatal(err)
			}
			// Redis's time, give or take half a round trip and the
			// payload's millisecond.
			if got := st.ReceivedAt; got.Before(before.Add(-time.Second)) || got.After(after.Add(time.Second)) {
				t.Errorf("received at %s on a host %s off Redis's clock; Redis's time was %s to %s", got, skew, before, after)
			}
		})
	}
}
