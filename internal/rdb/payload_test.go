package rdb

import (
	"bytes"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// TestChangeTaskPayload: a stored task's payload changes in every state a
// task rests in, asynq reads the new one with the rest of the task as it
// was, and a task a worker holds is left alone.
func TestChangeTaskPayload(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	cli := asynq.NewClientFromRedisClient(rc)
	insp := asynq.NewInspectorFromRedisClient(rc)
	tests := []struct {
		id   string
		opts []asynq.Option
		want asynq.TaskState
	}{
		{"pending", nil, asynq.TaskStatePending},
		{"scheduled", []asynq.Option{asynq.ProcessIn(time.Hour)}, asynq.TaskStateScheduled},
	}
	for _, tt := range tests {
		opts := append([]asynq.Option{asynq.Queue("q"), asynq.TaskID(tt.id), asynq.MaxRetry(7), asynq.Retention(time.Hour)}, tt.opts...)
		if _, err := cli.Enqueue(asynq.NewTask("lead:deliver", []byte(`{"old":1}`)), opts...); err != nil {
			t.Fatal(err)
		}
		got, err := s.ChangeTaskPayload(ctx, "q", tt.id, func(b []byte) ([]byte, bool, error) {
			if string(b) != `{"old":1}` {
				t.Errorf("%s: f got %q", tt.id, b)
			}
			return []byte(`{"new":2}`), true, nil
		})
		if err != nil || got != PayloadChanged {
			t.Fatalf("%s: %v %v", tt.id, got, err)
		}
		info, err := insp.GetTaskInfo("q", tt.id)
		if err != nil || !bytes.Equal(info.Payload, []byte(`{"new":2}`)) || info.State != tt.want || info.MaxRetry != 7 ||
			info.Retention != time.Hour || info.Type != "lead:deliver" {
			t.Errorf("%s after the change: %+v %v", tt.id, info, err)
		}
	}
	if got, err := s.ChangeTaskPayload(ctx, "q", "missing", nil); err != nil || got != PayloadGone {
		t.Errorf("a missing task: %v %v", got, err)
	}
	if err := rc.HSet(ctx, AsynqTaskKey("q", "pending"), "state", "active").Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ChangeTaskPayload(ctx, "q", "pending", nil); err != nil || got != PayloadActive {
		t.Errorf("an active task: %v %v", got, err)
	}
}
