package deadletter

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/delivery"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T, o Options) (*Store, *redis.Client) {
	t.Helper()
	rdb := redistest.Start(t).Client()
	return New(rdb, o), rdb
}

// record builds a dead lead of site with a real task payload.
func record(t testing.TB, site, key string, deadAt time.Time) Record {
	t.Helper()
	p := lead.NewPayload(site, key, lead.Lead{Title: "Ann " + key, Email: key + "@example.com"}, deadAt.Add(-time.Hour))
	task, err := lead.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	return Record{
		LeadID: p.ID, Site: site, Queue: lead.DefaultQueue, Reason: because("rejected"), Attempts: 1,
		DeadAt: deadAt, ReceivedAt: p.ReceivedAt, Payload: task.Payload(),
		Errors: []AttemptError{{At: deadAt, Attempt: 1, Class: "permanent", Reason: because("rejected")}},
	}
}

// because is a dead lead's reason in tests: the CRM's refusal with text.
func because(text string) delivery.Reason {
	return delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: text}
}

func TestPutMerges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t, Options{})
	r := record(t, "shop", "k1", t0)
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The same Put again is a no-op: idempotent per lead id.
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, r.LeadID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Errors) != 1 || got.Reason != because("rejected") || !got.DeadAt.Equal(t0) {
		t.Fatalf("after repeated Put: %+v", got)
	}
	var p lead.Payload
	if err := json.Unmarshal(got.Payload, &p); err != nil || p.Lead.Email != "k1@example.com" {
		t.Fatalf("payload = %s (%v)", got.Payload, err)
	}

	// The lead dies again, many times: latest reason, first ReceivedAt,
	// history appended and bounded.
	for i := 2; i <= 30; i++ {
		again := Record{
			LeadID: r.LeadID, Site: "shop", Reason: because(fmt.Sprintf("reason %d", i)), Attempts: i,
			DeadAt: t0.Add(time.Duration(i) * time.Minute), ReceivedAt: t0.Add(time.Hour),
			Errors: []AttemptError{{At: t0.Add(time.Duration(i) * time.Minute), Attempt: i, Reason: because(fmt.Sprintf("err %d", i))}},
		}
		if err := s.Put(ctx, again); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Get(ctx, r.LeadID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Reason != because("reason 30") || got.Attempts != 30 || !got.DeadAt.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("latest death not kept: reason %q attempts %d dead %v", got.Reason, got.Attempts, got.DeadAt)
	}
	if !got.ReceivedAt.Equal(r.ReceivedAt) {
		t.Errorf("ReceivedAt = %v, want first %v", got.ReceivedAt, r.ReceivedAt)
	}
	if len(got.Payload) == 0 {
		t.Error("payload lost by a Put without one")
	}
	if len(got.Errors) != MaxErrors || got.Errors[0].Attempt != 11 || got.Errors[MaxErrors-1].Attempt != 30 {
		t.Errorf("history: %d entries, first attempt %d", len(got.Errors), got.Errors[0].Attempt)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}

	// A record moved to another site leaves the old site's index.
	if err := s.Put(ctx, Record{LeadID: r.LeadID, Site: "blog", Reason: because("moved")}); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := s.List(ctx, Filter{Site: "shop"}); n != 0 {
		t.Errorf("old site still lists %d", n)
	}
	if _, n, _ := s.List(ctx, Filter{Site: "blog"}); n != 1 {
		t.Errorf("new site lists %d", n)
	}

	for _, bad := range []Record{{}, {LeadID: "x", Payload: json.RawMessage("{")}} {
		if err := s.Put(ctx, bad); err == nil {
			t.Errorf("Put(%+v) = nil error", bad)
		}
	}
	if _, err := s.Get(ctx, "ld_nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t, Options{})
	// shop: minutes 0,2,4,6,8; blog: 1,3,5,7,9.
	byMinute := map[int]string{}
	for i := range 10 {
		site := "shop"
		if i%2 == 1 {
			site = "blog"
		}
		r := record(t, site, fmt.Sprint("k", i), t0.Add(time.Duration(i)*time.Minute))
		byMinute[i] = r.LeadID
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(ms ...int) []string {
		var out []string
		for _, m := range ms {
			out = append(out, byMinute[m])
		}
		return out
	}
	tests := []struct {
		name  string
		f     Filter
		want  []string
		total int
	}{
		{"all newest first", Filter{}, ids(9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 10},
		{"site", Filter{Site: "shop"}, ids(8, 6, 4, 2, 0), 5},
		{"since", Filter{Since: t0.Add(7 * time.Minute)}, ids(9, 8, 7), 3},
		{"site and since", Filter{Site: "blog", Since: t0.Add(4 * time.Minute)}, ids(9, 7, 5), 3},
		{"first page", Filter{Limit: 3}, ids(9, 8, 7), 10},
		{"second page", Filter{Limit: 3, Offset: 3}, ids(6, 5, 4), 10},
		{"offset only", Filter{Offset: 8}, ids(1, 0), 10},
		{"past the end", Filter{Limit: 5, Offset: 20}, nil, 10},
		{"unknown site", Filter{Site: "none"}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, total, err := s.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.LeadID)
			}
			if !slices.Equal(got, tc.want) || total != tc.total {
				t.Errorf("List(%+v) = %v (total %d), want %v (total %d)", tc.f, got, total, tc.want, tc.total)
			}
		})
	}

	n, err := s.Delete(ctx, byMinute[0], byMinute[1], "ld_unknown")
	if err != nil || n != 2 {
		t.Fatalf("Delete = %d, %v; want 2", n, err)
	}
	if err := s.Forget(ctx, byMinute[2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, "ld_never_dead"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Count(ctx); c != 7 {
		t.Errorf("Count after delete = %d, want 7", c)
	}
	if c, _ := s.CountQueue(ctx, lead.DefaultQueue); c != 7 {
		t.Errorf("CountQueue = %d, want 7", c)
	}
	if _, total, _ := s.List(ctx, Filter{Site: "shop"}); total != 3 {
		t.Errorf("shop total after delete = %d, want 3", total)
	}
}

func TestRequeue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rdb := newStore(t, Options{MaxRetry: 7, Retention: time.Hour})
	cli := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)

	enqueue := func(r Record) {
		t.Helper()
		p, _ := lead.ParsePayload(r.Payload)
		task, _ := lead.NewTask(p)
		if _, err := cli.Enqueue(task, asynq.Queue(lead.DefaultQueue), asynq.MaxRetry(0)); err != nil {
			t.Fatal(err)
		}
	}
	archived := record(t, "shop", "archived", t0)  // asynq still holds the dead task
	trimmed := record(t, "shop", "trimmed", t0)    // asynq trimmed it away
	live := record(t, "shop", "live", t0)          // already pending again
	broken := record(t, "shop", "broken", t0)      // payload unusable
	broken.Payload = json.RawMessage(`{"id":"x"}`) // (no site/key)
	for _, r := range []Record{archived, trimmed, live, broken} {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(archived)
	if err := insp.ArchiveTask(lead.DefaultQueue, archived.LeadID); err != nil {
		t.Fatal(err)
	}
	enqueue(live)

	var progress [][2]int
	res, err := s.Requeue(ctx, []string{archived.LeadID, trimmed.LeadID, live.LeadID, broken.LeadID, "ld_unknown"},
		func(done, total int) { progress = append(progress, [2]int{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Rerun, []string{archived.LeadID}) || !slices.Equal(res.Enqueued, []string{trimmed.LeadID}) ||
		len(res.Skipped) != 1 || res.Skipped[0] != (Skip{ID: live.LeadID, State: "pending"}) ||
		!slices.Equal(res.NotFound, []string{"ld_unknown"}) || len(res.Failed) != 1 || res.Failed[0].ID != broken.LeadID {
		t.Fatalf("Requeue = %+v", res)
	}
	if res.Requeued() != 2 || len(progress) != 5 || progress[4] != [2]int{5, 5} {
		t.Errorf("Requeued %d, progress %v", res.Requeued(), progress)
	}
	for _, id := range []string{archived.LeadID, trimmed.LeadID} {
		info, err := insp.GetTaskInfo(lead.DefaultQueue, id)
		if err != nil || info.State != asynq.TaskStatePending {
			t.Errorf("task %s after requeue: %v %v", id, info, err)
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("record %s still stored after requeue (%v)", id, err)
		}
	}
	info, _ := insp.GetTaskInfo(lead.DefaultQueue, trimmed.LeadID)
	// A budget of 7 retries is enqueued as 8 runs: the last is kept for backpressure (lead.TaskOptions).
	if info.MaxRetry != 7+1 || info.Retention != time.Hour || info.Type != lead.TaskType {
		t.Errorf("new task: max retry %d retention %v type %s", info.MaxRetry, info.Retention, info.Type)
	}
	for _, id := range []string{live.LeadID, broken.LeadID} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("record %s gone although not requeued: %v", id, err)
		}
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rdb := newStore(t, Options{})
	cli := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	var shop []Record
	for i := range 3 {
		r := record(t, "shop", fmt.Sprint("s", i), t0.Add(time.Duration(i)*time.Minute))
		shop = append(shop, r)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		p, _ := lead.ParsePayload(r.Payload)
		task, _ := lead.NewTask(p)
		if _, err := cli.Enqueue(task, asynq.Queue(lead.DefaultQueue)); err != nil {
			t.Fatal(err)
		}
		if i < 2 { // the third stays pending: purge must not touch it
			if err := insp.ArchiveTask(lead.DefaultQueue, r.LeadID); err != nil {
				t.Fatal(err)
			}
		}
	}
	blog := record(t, "blog", "b", t0)
	if err := s.Put(ctx, blog); err != nil {
		t.Fatal(err)
	}

	res, err := s.Purge(ctx, Filter{Site: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if res != (PurgeResult{Records: 3, Tasks: 2}) {
		t.Errorf("Purge = %+v, want 3 records, 2 tasks", res)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Errorf("Count = %d, want 1 (blog)", n)
	}
	for i, r := range shop {
		info, err := insp.GetTaskInfo(lead.DefaultQueue, r.LeadID)
		if i < 2 && !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Errorf("archived task %d survived purge: %v %v", i, info, err)
		}
		if i == 2 && (err != nil || info.State != asynq.TaskStatePending) {
			t.Errorf("pending task touched by purge: %v %v", info, err)
		}
	}
}

// TestMigrate: the previous version's untagged keys move to the tagged
// ones, and the store finds the dead lead again.
func TestMigrate(t *testing.T) {
	t.Parallel()
	s, rc := newStore(t, Options{})
	ctx := t.Context()
	if err := s.Put(ctx, Record{LeadID: "ld_old", Site: "shop", Reason: because("rejected"), DeadAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Make it look as the previous version left it.
	const tagged, untagged = "leadrelay:{dead}:", "leadrelay:dead:"
	for _, k := range rc.Keys(ctx, tagged+"*").Val() {
		if err := rc.Rename(ctx, k, untagged+strings.TrimPrefix(k, tagged)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "ld_old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before the migration: %v, want not found", err)
	}
	moved, err := s.Migrate(ctx)
	if err != nil || moved == 0 {
		t.Fatalf("Migrate = %d, %v", moved, err)
	}
	if r, err := s.Get(ctx, "ld_old"); err != nil || r.Reason != because("rejected") {
		t.Fatalf("after the migration: %+v, %v", r, err)
	}
	if again, err := s.Migrate(ctx); err != nil || again != 0 {
		t.Errorf("second Migrate = %d, %v; want nothing to move", again, err)
	}
}
