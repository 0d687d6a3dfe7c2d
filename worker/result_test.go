package worker

import (
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

// TestResultIsCRMID: a delivered task keeps the CRM id as its result, for
// asynqmon's Result column (issue 21: it read "non-printable bytes").
func TestResultIsCRMID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	rc := e.rdb
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{
		Concurrency: 1, Queues: map[string]int{lead.DefaultQueue: 1}, TaskCheckInterval: 20 * time.Millisecond,
		ShutdownTimeout: time.Second, Logger: zap.NewNop().Sugar(), LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(e.h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	task, p := newLeadTask(t)
	if _, err := asynq.NewClientFromRedisClient(rc).Enqueue(task, asynq.Queue(lead.DefaultQueue), asynq.Retention(time.Hour)); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rc)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := insp.GetTaskInfo(lead.DefaultQueue, p.ID)
		if err == nil && info.State == asynq.TaskStateCompleted {
			marker := e.marker(p.ID)
			if marker == nil || string(info.Result) != strconv.FormatInt(marker.CRMID, 10) {
				t.Errorf("result %q, want the CRM id of marker %+v", info.Result, marker)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered after 30s: %+v, %v", info, err)
		}
	}
}
