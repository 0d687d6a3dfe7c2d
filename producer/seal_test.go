package producer

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/internal/seal"
	"leadrelay/lead"
	"leadrelay/worker/workertest"
)

func sealingCodec(t *testing.T) lead.Codec {
	t.Helper()
	k, err := seal.Parse("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	return lead.NewCodec(k)
}

// TestSealersOnFleetClock (issue 18, review point a): a worker registers
// as a sealer until an expiry on the fleet's clock, Redis's. A producer
// whose host clock runs an hour ahead of Redis's took every registration
// for expired, counted the sealing worker as one that cannot open sealed
// payloads, and queued leads in plaintext.
func TestSealersOnFleetClock(t *testing.T) {
	t.Parallel()
	m, rc := newMini(t)
	m.SetTime(time.Now().Add(-time.Hour)) // this host runs an hour ahead of Redis
	workertest.ServeQueue(t, rc, "sealers")
	ctx := t.Context()
	store := rdb.New(rc)
	redisNow, err := store.Time(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if err := store.RegisterWorker(ctx, host+":"+strconv.Itoa(os.Getpid()), true, redisNow, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := UnsealingWorkers(ctx, rc, "sealers"); n != 0 || err != nil {
		t.Fatalf("UnsealingWorkers = %d, %v; want 0: the one worker registered as a sealer, on Redis's clock", n, err)
	}
	p, _ := newPublisher(t, rc, Options{Queue: "sealers", Codec: sealingCodec(t)})
	if !p.codec(ctx).Sealing() {
		t.Error("the producer queues leads in plaintext while every worker opens sealed ones")
	}
}

// stallHook holds every command while stalled, and tells when one waits.
type stallHook struct {
	stalled atomic.Bool
	waiting chan struct{} // gets a value when a command waits
	release chan struct{} // closed to let them go
}

func (h *stallHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *stallHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.wait()
		return next(ctx, cmd)
	}
}
func (h *stallHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.wait()
		return next(ctx, cmds)
	}
}
func (h *stallHook) wait() {
	if h.stalled.Load() {
		select {
		case h.waiting <- struct{}{}:
		default:
		}
		<-h.release
	}
}

// TestSealGateDoesNotWaitForALook (issue 18, review point c): while one
// publish looks at the fleet on a Redis that does not answer, another
// publish takes the last answer at once. Before, the gate held its mutex
// during the look, so every intake request queued behind it.
func TestSealGateDoesNotWaitForALook(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	hook := &stallHook{waiting: make(chan struct{}, 1), release: make(chan struct{})}
	rc.AddHook(hook)
	released := false
	release := func() {
		if !released {
			released = true
			close(hook.release)
		}
	}
	t.Cleanup(release)
	p, _ := newPublisher(t, rc, Options{Queue: "gate", Codec: sealingCodec(t)})
	ctx := t.Context()
	if !p.codec(ctx).Sealing() {
		t.Fatal("no worker serves the queue: want sealing")
	}
	p.gate.mu.Lock()
	p.gate.at = time.Now().Add(-2 * sealLookEvery) // the next publish looks again
	p.gate.mu.Unlock()
	hook.stalled.Store(true)
	go p.codec(ctx)
	select {
	case <-hook.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the look never reached Redis")
	}
	other := make(chan bool, 1)
	go func() { other <- p.codec(ctx).Sealing() }()
	select {
	case sealing := <-other:
		if !sealing {
			t.Error("the publish beside the look did not take the last answer (sealing)")
		}
	case <-time.After(10 * time.Second):
		t.Error("a publish waited for another's look at the fleet")
	}
	release()
}
