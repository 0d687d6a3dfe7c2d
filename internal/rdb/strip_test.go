package rdb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"leadrelay/internal/redistest"
)

// TestChangeCompletedDropsLastError: rewriting a completed task's payload
// also drops asynq's error_msg of an earlier failed run, whose text may
// quote the CRM's answer about the lead; every other field stays.
func TestChangeCompletedDropsLastError(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rc := redistest.Start(t).Client()
	var msg []byte
	for _, f := range []struct {
		num protowire.Number
		val string
	}{{1, "lead:deliver"}, {2, "the lead's fields"}, {3, "ld_1"}, {7, "CRM said: ann@example.org is invalid"}} {
		msg = protowire.AppendTag(msg, f.num, protowire.BytesType)
		msg = protowire.AppendString(msg, f.val)
	}
	key := AsynqTaskKey("q", "ld_1")
	if err := rc.HSet(ctx, key, "msg", msg, "state", "completed").Err(); err != nil {
		t.Fatal(err)
	}
	strip := func([]byte) ([]byte, bool, error) { return []byte("envelope"), true, nil }
	if _, n, err := New(rc).ChangeCompleted(ctx, "q", []string{"ld_1"}, strip); err != nil || n != 1 {
		t.Fatalf("ChangeCompleted rewrote %d, %v; want 1", n, err)
	}
	got, err := rc.HGet(ctx, key, "msg").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lead:deliver", "envelope", "ld_1"} {
		if !strings.Contains(got, want) {
			t.Errorf("the rewritten task lost %q: %q", want, got)
		}
	}
	for _, gone := range []string{"the lead's fields", "ann@example.org"} {
		if strings.Contains(got, gone) {
			t.Errorf("the rewritten task still holds %q: %q", gone, got)
		}
	}
}

// TestCompletedPage: the completed tasks are read by the second their
// retention ends, lowest first, within the range and past the skipped.
func TestCompletedPage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rc := redistest.Start(t).Client()
	for id, ends := range map[string]float64{"a": 100, "b": 200, "c": 200, "d": 300, "e": 400} {
		if err := rc.ZAdd(ctx, asynqCompletedKey("q"), redis.Z{Score: ends, Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		from, to int64
		skip, n  int
		want     string
	}{
		{"all", 0, 1000, 0, 10, "a@100 b@200 c@200 d@300 e@400"},
		{"a range", 200, 300, 0, 10, "b@200 c@200 d@300"},
		{"a page", 0, 1000, 0, 2, "a@100 b@200"},
		{"past the skipped", 200, 1000, 2, 2, "d@300 e@400"},
		{"none", 500, 1000, 0, 10, ""},
		{"another queue", 0, 1000, 0, 10, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := "q"
			if tt.name == "another queue" {
				q = "other"
			}
			page, err := New(rc).CompletedPage(ctx, q, tt.from, tt.to, tt.skip, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range page {
				got = append(got, fmt.Sprintf("%s@%d", c.ID, c.Ends))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("CompletedPage = %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// TestMoveStripCursor: the cursor only moves forward (several sweepers
// keep the furthest), except from beyond the furthest a task completing
// now can end (its retention was shortened), and expires at its second.
func TestMoveStripCursor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	now := time.Now().Unix()
	limit := now + 1000
	steps := []struct {
		name  string
		to    StripCursor
		limit int64
		moved bool
		want  StripCursor
	}{
		{"first", StripCursor{now + 100, 0}, limit, true, StripCursor{now + 100, 0}},
		{"further", StripCursor{now + 200, 0}, limit, true, StripCursor{now + 200, 0}},
		{"further in its second", StripCursor{now + 200, 5}, limit, true, StripCursor{now + 200, 5}},
		{"back in its second", StripCursor{now + 200, 3}, limit, false, StripCursor{now + 200, 5}},
		{"back", StripCursor{now + 150, 9}, limit, false, StripCursor{now + 200, 5}},
		{"same", StripCursor{now + 200, 5}, limit, false, StripCursor{now + 200, 5}},
		{"retention shortened", StripCursor{now + 50, 0}, now + 100, true, StripCursor{now + 50, 0}},
	}
	for _, st := range steps { // in order: each step starts where the last left it
		moved, err := s.MoveStripCursor(ctx, "q", st.to, st.limit)
		if err != nil || moved != st.moved {
			t.Errorf("%s: moved %v, %v; want %v", st.name, moved, err, st.moved)
		}
		c, ok, err := s.StripCursor(ctx, "q")
		if err != nil || !ok || c != st.want {
			t.Errorf("%s: cursor %+v, %v, %v; want %+v", st.name, c, ok, err, st.want)
		}
	}
	if ttl := rc.TTL(ctx, StripCursorKey("q")).Val(); ttl <= 0 || ttl > 50*time.Second {
		t.Errorf("cursor TTL %v, want it to expire at its own second (≤ 50s)", ttl)
	}
	// A cursor at a second gone covers only expired tasks: none is kept.
	if _, err := s.MoveStripCursor(ctx, "past", StripCursor{now - 1, 0}, limit); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"past", "other"} {
		if _, ok, err := s.StripCursor(ctx, q); ok || err != nil {
			t.Errorf("queue %s's cursor: %v, %v; want none", q, ok, err)
		}
	}
}
