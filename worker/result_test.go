package worker

import (
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

// TestResultIsCRMID: a delivered task keeps the CRM id as its result, for
// asynqmon's Result column (issue 21: it read "non-printable bytes").
func TestResultIsCRMID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, crmclient.V2, nil)
	rc := e.rdb
	serveAsynq(t, rc, e.h, asynq.Config{Concurrency: 1, TaskCheckInterval: 20 * time.Millisecond})
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
