package producer

import (
	"errors"
	"testing"
	"time"

	"leadrelay/internal/rdb"
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
	rc := primary.Client()
	p, _ := newPublisher(t, rc, Options{Queue: "confirm", WaitReplicas: 1, WaitTimeout: 5 * time.Second})
	ctx := t.Context()
	tests := []struct {
		name     string
		loseTask bool
		wantErr  error
	}{
		{"replica holds the lead", false, nil},
		{"task lost before the wait", true, rdb.ErrTaskNotOnPrimary},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann", Description: tc.name}, "k"+string(rune('a'+i)))
			if err != nil {
				t.Fatalf("Publish = %v", err)
			}
			if tc.loseTask {
				if err := rc.Del(ctx, rdb.AsynqTaskKey("confirm", r.ID)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			err = p.confirm(ctx, r.ID)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("confirm = %v", err)
			case tc.wantErr != nil && (!errors.Is(err, ErrUnavailable) || !errors.Is(err, tc.wantErr)):
				t.Fatalf("confirm = %v, want ErrUnavailable and %v", err, tc.wantErr)
			}
		})
	}
}
