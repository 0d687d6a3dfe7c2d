package rdb

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"leadrelay/internal/redistest"
)

// TestChangeCompletedDropsLastError: rewriting a completed task's payload
// also drops asynq's error_msg of an earlier failed run, whose text may
// quote the CRM's answer about the lead; every other field stays.
func TestChangeCompletedDropsLastError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
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
	if _, err := New(rc).ChangeCompleted(ctx, "q", []string{"ld_1"}, strip); err != nil {
		t.Fatal(err)
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
