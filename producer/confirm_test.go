package producer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestWaitReplicasConfirms: with a replica in sync a lead is acknowledged;
// a task that is not on the primary the confirming connection reaches (lost
// in a failover) is not.
func TestWaitReplicasConfirms(t *testing.T) {
	t.Parallel()
	primary := redistest.Start(t)
	redistest.StartReplica(t, primary)
	rdb := primary.Client()
	p, _ := newPublisher(t, rdb, Options{Queue: "confirm", WaitReplicas: 1, WaitTimeout: 5 * time.Second})
	ctx := context.Background()
	tests := []struct {
		name     string
		loseTask bool
		wantErr  string
	}{
		{"replica holds the lead", false, ""},
		{"task lost before the wait", true, "not on the current primary"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann", Description: tc.name}, "k"+string(rune('a'+i)))
			if err != nil {
				t.Fatalf("Publish = %v", err)
			}
			if tc.loseTask {
				if err := rdb.Del(ctx, "asynq:{confirm}:t:"+r.ID).Err(); err != nil {
					t.Fatal(err)
				}
			}
			err = p.confirm(ctx, r.ID)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("confirm = %v", err)
			case tc.wantErr != "" && (!errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("confirm = %v, want ErrUnavailable saying %q", err, tc.wantErr)
			}
		})
	}
}
