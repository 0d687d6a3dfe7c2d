package rdb

import (
	"context"
	"errors"
	"fmt"
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
	all     bool // count the round trips without scripts too (their connection's set-up aside)
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
	if n == 0 && (!h.all || setUp(cmds[0].Name())) {
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

// setUp says a command is a connection's set-up, not a caller's.
func setUp(name string) bool {
	switch name {
	case "hello", "client", "auth", "select", "ping":
		return true
	}
	return false
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
	ctx := t.Context()
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
	t.Run("keyless admission", func(t *testing.T) {
		// Drop-in sites send no key: their leads are admitted by the
		// keyless script, which each call sent alone before, in a
		// pipeline with the reads of the lead's legacy id (the id the
		// version before keyed ids gave it; every keyless lead has one).
		must(t, admitKeylessScript.Load(ctx, rc).Err())
		admit := func(s *Store, i int) error {
			fresh := "kl" + strconv.Itoa(i)
			k := KeylessArgs{Site: "shop", Name: "form-" + strconv.Itoa(i), Fresh: fresh, Window: time.Minute,
				LegacyID: "ld_legacy_kl" + strconv.Itoa(i), Legacy: "sha256:kl" + strconv.Itoa(i),
				Recent: func([]byte, *Marker) bool { return false }}
			r, err := s.AdmitKeyless(ctx, k, AdmitArgs{Queue: "leads", ID: "ld_" + fresh, Site: "shop", Now: now, Keep: time.Hour})
			if err == nil && (r.Identity != fresh || r.Admitted == nil) {
				err = fmt.Errorf("admitted %+v, want identity %s and an admission", r, fresh)
			}
			return err
		}
		for i, err := range together(t, rc, n, admit, []int{1, n - 1}) {
			if err != nil {
				t.Errorf("lead %d: %v", i, err)
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

// TestAdmitKeyless: a keyless lead's first submission gets its identity
// and its admission in one round trip (before, three: the legacy lead's
// reads, the keyless record, the admission); a repeat within the window
// gets the first one's identity and no admission; a recent lead of the
// version before keyed ids takes the record over, and the admission made
// for the fresh identity is given back.
func TestAdmitKeyless(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	h := newTripHook()
	h.all = true
	close(h.gate)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	c.AddHook(h)
	s := New(c)
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	admit := func(name, fresh string, recent bool) KeylessAdmitted {
		t.Helper()
		k := KeylessArgs{Site: "shop", Name: name, Fresh: fresh, Window: time.Minute,
			LegacyID: "ld_legacy_" + name, Legacy: "sha256:" + name,
			Recent: func([]byte, *Marker) bool { return recent }}
		a := AdmitArgs{Queue: "leads", ID: "ld_" + fresh, Site: "shop", Now: now, Keep: time.Hour}
		r, err := s.AdmitKeyless(ctx, k, a)
		must(t, err)
		return r
	}
	backlog := func() string { return c.HGet(ctx, BacklogKey("leads"), "shop").Val() }

	// A task in asynq's pending list keeps the backlog's counts (an empty
	// queue resets them), and a first call loads the script.
	must(t, c.LPush(ctx, asynqQueueKeys("leads")[0], "ld_other").Err())
	admit("warm", "warm@0", false)
	must(t, c.HDel(ctx, BacklogKey("leads"), "shop").Err())
	before := len(h.rounds())
	first := admit("a", "a@1", false)
	if trips := h.rounds()[before:]; len(trips) != 1 {
		t.Errorf("first submission: round trips carrying %v scripts, want one round trip", trips)
	}
	if first.Identity != "a@1" || first.Repeats != 0 || first.Admitted == nil || first.Admitted.Admission != Reserved || backlog() != "1" {
		t.Errorf("first submission: %+v (admitted %+v), backlog %s; want a@1 reserved, backlog 1", first, first.Admitted, backlog())
	}
	repeat := admit("a", "a@2", false)
	if repeat.Identity != "a@1" || repeat.Repeats != 1 || repeat.Admitted != nil || backlog() != "1" {
		t.Errorf("repeat: %+v, backlog %s; want a@1, 1 repeat, no admission, backlog 1", repeat, backlog())
	}
	legacy := admit("b", "b@3", true)
	if legacy.Identity != "sha256:b" || legacy.Admitted != nil || backlog() != "1" {
		t.Errorf("recent legacy lead: %+v, backlog %s; want sha256:b, no admission, backlog 1", legacy, backlog())
	}
	again := admit("b", "b@4", false)
	if again.Identity != "sha256:b" || again.Repeats != 1 {
		t.Errorf("repeat after the legacy lead: %+v, want sha256:b, 1 repeat", again)
	}
}
