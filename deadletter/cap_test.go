package deadletter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// asynqArchiveCap is asynq's hard-coded maxArchiveSize (internal/rdb).
const asynqArchiveCap = 10_000

// TestStoreOutlivesAsynqArchiveCap dead-letters more leads than asynq's
// archive can hold, through a real asynq.Server, and shows that asynq trims
// its archive while the store keeps every lead, each one requeueable.
func TestStoreOutlivesAsynqArchiveCap(t *testing.T) {
	const n = asynqArchiveCap + 50
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 40})
	t.Cleanup(func() { rdb.Close() })
	store := New(rdb, Options{MaxRetry: 3, Retention: time.Hour})

	var putErrs atomic.Int64
	h := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		p, err := lead.ParsePayload(task.Payload())
		if err != nil {
			return fmt.Errorf("broken payload: %w: %w", err, asynq.SkipRetry)
		}
		now := time.Now()
		if err := store.Put(ctx, Record{
			LeadID: p.ID, Site: p.Site, Queue: lead.DefaultQueue, Reason: because("rejected by the test"), Attempts: 1,
			DeadAt: now, ReceivedAt: p.ReceivedAt, Payload: task.Payload(),
			Errors: []AttemptError{{At: now, Attempt: 1, Class: "permanent", Reason: because("rejected")}},
		}); err != nil {
			putErrs.Add(1)
			return err
		}
		return fmt.Errorf("rejected: %w", asynq.SkipRetry)
	})
	server := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 20, Queues: map[string]int{lead.DefaultQueue: 1},
		Logger: zap.NewNop().Sugar(), LogLevel: asynq.FatalLevel,
	})
	if err := server.Start(h); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			server.Shutdown()
		}
	}
	t.Cleanup(stop)

	// Enqueue from a few goroutines while the server already works.
	cli := asynq.NewClientFromRedisClient(rdb)
	var wg sync.WaitGroup
	const senders = 8
	errc := make(chan error, senders)
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += senders {
				p := lead.NewPayload("shop", fmt.Sprint("cap-", i), lead.Lead{Title: fmt.Sprint("Lead ", i)}, time.Now())
				task, err := lead.NewTask(p)
				if err == nil {
					_, err = cli.EnqueueContext(ctx, task, asynq.Queue(lead.DefaultQueue), asynq.MaxRetry(0))
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("enqueue: %v", err)
	}

	// Wait (bounded by ctx) until every lead is dead in both places.
	insp := asynq.NewInspectorFromRedisClient(rdb)
	var info *asynq.QueueInfo
	for {
		var err error
		info, err = insp.GetQueueInfo(lead.DefaultQueue)
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := store.Count(ctx); c == n && info.Pending == 0 && info.Active == 0 && info.Retry == 0 {
			break
		}
		select {
		case <-ctx.Done():
			c, _ := store.Count(t.Context())
			t.Fatalf("not all leads died in time: store %d, asynq %+v", c, info)
		case <-time.After(200 * time.Millisecond):
		}
	}
	stop()
	if e := putErrs.Load(); e != 0 {
		t.Fatalf("%d Put calls failed", e)
	}
	count, err := store.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dead-lettered %d leads: asynq archive holds %d, the store holds %d", n, info.Archived, count)
	if info.Archived > asynqArchiveCap {
		t.Errorf("asynq archive holds %d, more than its cap %d", info.Archived, asynqArchiveCap)
	}
	if info.Archived >= n {
		t.Fatalf("asynq did not trim its archive (%d of %d): the test proves nothing", info.Archived, n)
	}
	if count != n {
		t.Fatalf("store holds %d dead leads, want all %d", count, n)
	}

	ids, total, err := store.IDs(ctx, Filter{})
	if err != nil || total != n || len(ids) != n {
		t.Fatalf("IDs = %d (total %d), %v", len(ids), total, err)
	}
	var calls int
	res, err := store.Requeue(ctx, ids, func(done, total int) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("requeued %d: %d archived tasks rerun, %d trimmed tasks enqueued afresh", res.Requeued(), len(res.Rerun), len(res.Enqueued))
	if res.Requeued() != n || len(res.Skipped)+len(res.NotFound)+len(res.Failed) != 0 || calls != n {
		t.Fatalf("Requeue: requeued %d of %d, skipped %d, not found %d, failed %v", res.Requeued(), n,
			len(res.Skipped), len(res.NotFound), res.Failed[:min(3, len(res.Failed))])
	}
	if len(res.Enqueued) != n-info.Archived || len(res.Rerun) != info.Archived {
		t.Errorf("enqueued %d, rerun %d; want %d and %d", len(res.Enqueued), len(res.Rerun), n-info.Archived, info.Archived)
	}
	after, err := insp.GetQueueInfo(lead.DefaultQueue)
	if err != nil {
		t.Fatal(err)
	}
	if after.Pending != n || after.Archived != 0 {
		t.Errorf("after requeue: pending %d archived %d, want %d and 0", after.Pending, after.Archived, n)
	}
	if c, _ := store.Count(ctx); c != 0 {
		t.Errorf("store still holds %d after requeueing all", c)
	}
}
