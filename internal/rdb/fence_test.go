package rdb

import (
	"testing"
	"time"

	"leadrelay/delivery"
)

// TestLateWritesAfterTakeOver: worker A begins and sends, is cut off from
// Redis, and its lock expires; worker B takes the lead over, finds A's add
// uncertain, looks it up and sends again. A's writes, sent as its link
// dropped, land now: none may change B's record (issue 17.1: A's release
// turned B's "sending" into "failed", and the next run added again
// without a look-up). Each answers Fenced. A's Finish still records the
// delivered marker (the CRM's word), but leaves B's record and lock.
func TestLateWritesAfterTakeOver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const id = "ld_f"
	now := time.Now()
	type late func(t *testing.T, s *Store) Fence
	tests := []struct {
		name       string
		late       late
		wantMarker bool // A's write leaves the delivered marker
		wantDead   bool // and the dead flag
	}{
		{"release as failed", func(t *testing.T, s *Store) Fence {
			f, err := s.Release(ctx, id, "A", Release{Mode: ReleaseSet, State: StateFailed})
			must(t, err)
			return f
		}, false, false},
		{"release as unsent", func(t *testing.T, s *Store) Fence {
			f, err := s.Release(ctx, id, "A", Release{Mode: ReleaseUnsend})
			must(t, err)
			return f
		}, false, false},
		{"mark sending", func(t *testing.T, s *Store) Fence {
			m, err := s.MarkSending(ctx, id, "A", now, time.Hour, 0)
			must(t, err)
			return m.Fence
		}, false, false},
		{"failed run", func(t *testing.T, s *Store) Fence {
			_, f, err := s.Failed(ctx, id, "A", delivery.Reason{Code: delivery.LockBusy}, true, time.Hour)
			must(t, err)
			return f
		}, false, false},
		{"mark dead", func(t *testing.T, s *Store) Fence {
			f, err := s.MarkDead(ctx, "leads", id, "A", "shop", StateFailed, time.Hour)
			must(t, err)
			return f
		}, false, true},
		{"finish", func(t *testing.T, s *Store) Fence {
			f, err := s.Finish(ctx, FinishArgs{Marker: Marker{CRMID: 7, LeadID: id, Site: "shop", At: now}, Queue: "leads",
				Token: "A", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01"})
			must(t, err)
			return f.Fence
		}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, rc := startStore(t)
			rc.HSet(ctx, BacklogKey("leads"), "shop", 1)
			takeOver(t, s, id, now)
			before := rc.HGetAll(ctx, AttemptKey(id)).Val()
			if f := tc.late(t, s); f != Fenced {
				t.Errorf("A's late write answered %v, want Fenced", f)
			}
			after := rc.HGetAll(ctx, AttemptKey(id)).Val()
			if tc.wantDead {
				if after["dead"] != "1" {
					t.Errorf("dead flag = %q, want 1 (A's dead-letter record must go when B delivers)", after["dead"])
				}
				delete(after, "dead")
			}
			for _, f := range []string{"state", "sends", "run", "reason", "runs", "settle_at", "dead"} {
				if before[f] != after[f] {
					t.Errorf("B's record: %s %q became %q", f, before[f], after[f])
				}
			}
			if l := rc.Get(ctx, LockKey(id)).Val(); l != "B" {
				t.Errorf("lock = %q, want B's", l)
			}
			if got := rc.Exists(ctx, DeliveredKey(id)).Val() == 1; got != tc.wantMarker {
				t.Errorf("delivered marker written: %v, want %v", got, tc.wantMarker)
			}
			if n := rc.HGet(ctx, BacklogKey("leads"), "shop").Val(); n != "1" && !tc.wantMarker {
				t.Errorf("backlog count = %q, want 1: B's lead is neither dead nor delivered", n)
			}
		})
	}
}

// TestFenceOwner: the run that holds a lead writes it, after its lock
// expired too if no one took over; after a take-over the newer run
// writes, and an older run stays fenced off once the newer released.
func TestFenceOwner(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const id = "ld_o"
	now := time.Now()
	s, rc := startStore(t)
	release := func(token, state string) Fence {
		t.Helper()
		f, err := s.Release(ctx, id, token, Release{Mode: ReleaseSet, State: state, SettleAt: now})
		must(t, err)
		return f
	}
	if _, err := s.Begin(ctx, BeginArgs{ID: id, Token: "A", Now: now, LockTTL: time.Minute, RecordTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	rc.Del(ctx, LockKey(id)) // expired, no one took over
	if f := release("A", StateUncertain); f != Owned {
		t.Fatalf("A's release after its lock expired, no take-over: %v, want Owned", f)
	}
	takeOver(t, s, id, now)
	if f := release("B", StateUncertain); f != Owned {
		t.Fatalf("B's release: %v, want Owned", f)
	}
	if f := release("A", StateFailed); f != Fenced {
		t.Fatalf("A's release after B released: %v, want Fenced", f)
	}
	if st := rc.HGet(ctx, AttemptKey(id), "state").Val(); st != StateUncertain {
		t.Errorf("state = %q, want B's %q", st, StateUncertain)
	}
}

// takeOver has A begin and send, A's lock expire, and B take the lead
// over and send again after a look-up.
func takeOver(t *testing.T, s *Store, id string, now time.Time) {
	t.Helper()
	ctx := t.Context()
	begin := func(token string) Begun {
		t.Helper()
		b, err := s.Begin(ctx, BeginArgs{ID: id, Token: token, Now: now, LockTTL: time.Minute, RecordTTL: time.Hour})
		must(t, err)
		return b
	}
	if a := begin("A"); !a.Send && !a.Locked {
		t.Fatalf("A's begin = %+v", a)
	}
	must(t, s.c.Del(ctx, LockKey(id)).Err()) // A's lock expires
	if b := begin("B"); !b.Locked || b.Send {
		t.Fatalf("B's begin = %+v, want the lock and A's add uncertain", b)
	}
	if m, err := s.MarkSending(ctx, id, "B", now, time.Hour, 0); err != nil || m.Fence != Owned || m.Marker != nil {
		t.Fatalf("B's MarkSending = %+v, %v", m, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
