package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
)

// TestPartitionLateWrites (issue 17, point 1, end to end): worker A reaches
// Redis through a proxy. A's add fails (HTTP 503) and, as it does, A's
// link freezes: its release (state "failed") and lease renewals are held
// in the proxy. A's lock expires; worker B takes the lead over, finds A's
// "sending", looks it up (nothing), sends it again, and, while B's add is
// in the CRM, the proxy delivers A's held writes; then B's host dies
// before it records anything. Worker C must find B's add by a look-up, not send a third
// time: the CRM holds the lead once. Before fencing, A's late release
// turned B's "sending" into "failed" and C added the lead again.
func TestPartitionLateWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Start(t)
	pa, pb := redistest.StartProxy(t, srv.Addr), redistest.StartProxy(t, srv.Addr)
	client := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	rc := srv.Client()
	fake := newFakeCRM(crmclient.V2)
	clock := newTestClock()
	o := Options{CRMTimeout: time.Second, Clock: clock.Now, BreakerThreshold: 1000, LockTTL: time.Second}
	a := newHandler(t, fake, client(pa.Addr), o, nil)
	b := newHandler(t, fake, client(pb.Addr), o, nil)
	c := newHandler(t, fake, rc, o, nil)
	task, p := newLeadTask(t)

	calls := func() int64 {
		n, err := redistest.CommandCalls(ctx, rc)
		if err != nil {
			t.Fatal(err)
		}
		return n["evalsha"] + n["eval"]
	}
	var lateLanded bool
	fake.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
		switch n {
		case 1: // A's add fails (a 503: nothing stored); A's link freezes
			pa.Freeze()
			return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
		case 2: // B's add is stored; A's held writes land; B's host dies
			before := calls()
			pa.Release()
			lateLanded = within(5*time.Second, func() bool { return pa.Held() == 0 && calls() > before })
			pb.Drop()
			return true, lostConn
		}
		return true, nil
	})
	aDone := make(chan error, 1)
	go func() { aDone <- a.ProcessTask(ctx, task) }()
	if !within(10*time.Second, func() bool { return pa.Held() > 0 && rc.Exists(ctx, rdb.LockKey(p.ID)).Val() == 0 }) {
		t.Fatal("A's writes were not held, or its lock did not expire")
	}

	// B takes over: A's add is uncertain; after the reconcile wait B looks
	// it up, finds nothing and sends again.
	var de *DelayError
	if err := b.ProcessTask(ctx, task); !errors.As(err, &de) || de.Reason.Code != delivery.LookUpWait {
		t.Fatalf("B's first run = %v, want postponed for the look-up", err)
	}
	clock.Advance(de.Delay)
	_ = b.ProcessTask(ctx, task) // B's host dies in its add
	if !lateLanded {
		t.Fatal("A's held writes did not reach Redis")
	}
	if !within(10*time.Second, func() bool { return rc.Exists(ctx, rdb.LockKey(p.ID)).Val() == 0 }) {
		t.Fatal("B's lock did not expire")
	}

	// C: B's add is uncertain; C looks it up and finds it.
	err := c.ProcessTask(ctx, task)
	for try := 0; errors.As(err, &de) && de.Reason.Code == delivery.LookUpWait && try < 3; try++ {
		clock.Advance(de.Delay)
		err = c.ProcessTask(ctx, task)
	}
	if err != nil {
		t.Fatalf("C's run = %v, want delivered by its look-up", err)
	}
	if n := fake.PerCompany()[p.Lead.Company]; n != 1 {
		t.Errorf("the CRM holds the lead %d times, want 1", n)
	}
	if adds, _ := fake.Counts(); adds != 2 {
		t.Errorf("%d adds, want 2 (A's lost one, B's)", adds)
	}
	select {
	case <-aDone:
	case <-time.After(30 * time.Second):
		t.Error("A's run did not end")
	}
}

// within polls cond every 10 ms for at most d.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
