package rdb

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redistest"
)

// tripHook counts the scripts each round trip to Redis carries, and holds
// the first one back until gate is closed, so that calls made meanwhile
// queue behind it.
type tripHook struct {
	mu      sync.Mutex
	trips   []int
	entered chan struct{} // closed when the first round trip is held
	gate    chan struct{}
}

func newTripHook() *tripHook {
	return &tripHook{entered: make(chan struct{}), gate: make(chan struct{})}
}

func (h *tripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *tripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trip([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *tripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trip(cmds)
		return next(ctx, cmds)
	}
}

func (h *tripHook) trip(cmds []redis.Cmder) {
	n := 0
	for _, c := range cmds {
		if name := c.Name(); name == "evalsha" || name == "eval" {
			n++
		}
	}
	if n == 0 {
		return // the connection's own set-up
	}
	h.mu.Lock()
	h.trips = append(h.trips, n)
	first := len(h.trips) == 1
	h.mu.Unlock()
	if first {
		close(h.entered)
		<-h.gate
	}
}

func (h *tripHook) rounds() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.trips...)
}

// TestGroupCommit: calls that come while a round trip is in flight share
// the next one (one pipeline), each with its own answer: a lead whose
// script fails, or whose caller gave up, fails alone; a lone call goes at
// once, alone. Begin and Finish, a run's two round trips, both share.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	const n = 8
	const broken, gaveUp = 3, 5 // lead 3's lock is a hash: its script fails
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	id := func(i int) string { return "ld_g" + strconv.Itoa(i) }
	begin := func(s *Store, i int) error {
		c := ctx
		if i == gaveUp {
			c = cancelled
		}
		b, err := s.Begin(c, BeginArgs{ID: id(i), Token: "T" + strconv.Itoa(i), Now: now, LockTTL: time.Minute, RecordTTL: time.Hour})
		if err == nil && (!b.Locked || !b.Send) {
			err = errors.New("not locked for a send")
		}
		return err
	}
	finish := func(s *Store, i int) error {
		f, err := s.Finish(ctx, FinishArgs{Marker: Marker{CRMID: int64(100 + i), LeadID: id(i), Site: "shop", At: now},
			Queue: "leads", Token: "T" + strconv.Itoa(i), TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-07"})
		if err == nil && (f.Old != nil || f.Fence != Owned) {
			err = errors.New("not recorded as this run's delivery")
		}
		return err
	}
	rc := redistest.Start(t).Client()
	must(t, rc.HSet(ctx, LockKey(id(broken)), "x", "1").Err())
	for _, sc := range []*redis.Script{beginAllScript, finishAllScript} {
		must(t, sc.Load(ctx, rc).Err()) // else each call's first answer is NOSCRIPT
	}
	t.Run("begin", func(t *testing.T) {
		errs := together(t, rc, n, begin, []int{1, n - 2})
		for i, err := range errs {
			switch {
			case i == broken && err == nil:
				t.Errorf("lead %d, whose lock is a hash, began", i)
			case i == gaveUp && !errors.Is(err, context.Canceled):
				t.Errorf("lead %d, whose caller gave up: %v, want context.Canceled", i, err)
			case i != broken && i != gaveUp && err != nil:
				t.Errorf("lead %d: %v", i, err)
			}
		}
		if rc.Exists(ctx, LockKey(id(gaveUp))).Val() != 0 {
			t.Errorf("the call whose caller gave up before it was sent was sent")
		}
	})
	t.Run("finish", func(t *testing.T) {
		began := []int{}
		for i := range n {
			if i != broken && i != gaveUp {
				began = append(began, i)
			}
		}
		errs := together(t, rc, len(began), func(s *Store, j int) error { return finish(s, began[j]) }, []int{1, len(began) - 1})
		for j, err := range errs {
			if err != nil {
				t.Errorf("lead %d: %v", began[j], err)
			}
		}
	})
	t.Run("script cache empty", func(t *testing.T) {
		// After a restart or failover: each call of the round trip that
		// found no script runs it again on its own, and none fails.
		must(t, rc.ScriptFlush(ctx).Err())
		errs := together(t, rc, 4, func(s *Store, i int) error { return begin(s, 20+i) }, nil)
		for i, err := range errs {
			if err != nil {
				t.Errorf("lead %d: %v", 20+i, err)
			}
		}
	})
	t.Run("alone", func(t *testing.T) {
		h := newTripHook()
		close(h.gate)
		c := redis.NewClient(&redis.Options{Addr: rc.Options().Addr})
		t.Cleanup(func() { _ = c.Close() })
		c.AddHook(h)
		s := New(c)
		for i := n; i < n+3; i++ {
			must(t, begin(s, i))
		}
		if got := h.rounds(); len(got) != 3 || got[0]+got[1]+got[2] != 3 {
			t.Errorf("round trips %v, want three of one script each", got)
		}
	})
}

// together makes calls 0..n-1 on a store of its own on rc's server: call
// 0 first, held in its round trip until the others wait behind it, and
// checks the scripts each round trip carried.
func together(t *testing.T, rc *redis.Client, n int, call func(s *Store, i int) error, want []int) []error {
	t.Helper()
	h := newTripHook()
	c := redis.NewClient(&redis.Options{Addr: rc.Options().Addr})
	t.Cleanup(func() { _ = c.Close() })
	c.AddHook(h)
	s := New(c)
	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = call(s, 0) }()
	<-h.entered
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = call(s, i) }()
	}
	for deadline := time.Now().Add(30 * time.Second); s.g.pending() < n-1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(h.gate)
			t.Fatalf("%d of %d calls queued", s.g.pending(), n-1)
		}
	}
	close(h.gate)
	wg.Wait()
	if got := h.rounds(); want != nil && (len(got) != len(want) || got[0] != want[0] || got[1] != want[1]) {
		t.Errorf("scripts per round trip %v, want %v", got, want)
	}
	return errs
}
