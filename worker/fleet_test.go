package worker

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/worker/workertest"
)

// TestFleetWritesPreviousMarkersOnlyWithOldWorkers: a delivery writes the
// previous version's delivered marker beside its own while an asynq
// server of the queue belongs to no worker of this version (a worker of
// the previous version, which reads only that marker), and never once
// only this version's workers serve the queue: that marker was ~300 B of
// every delivered lead, kept 30 days.
func TestFleetWritesPreviousMarkersOnlyWithOldWorkers(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	me := host + ":" + strconv.Itoa(os.Getpid())
	tests := []struct {
		name       string
		self       string // the identity the handler registers ("" : never looks)
		wantLegacy bool
	}{
		{"never looked (safe default)", "", true},
		{"only this version", me, false},
		{"an asynq server this version did not register", "elsewhere:1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := redistest.Start(t).Client()
			log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
			o := Options{Concurrency: 1, PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second}
			// A bare asynq server of the queue, in this process: what a
			// worker of the previous version looks like to asynq.
			workertest.ServeQueue(t, rc, lead.DefaultQueue)
			insp := asynq.NewInspectorFromRedisClient(rc)
			h := newHandler(t, newFakeCRM(crmclient.V2), rc, o, log)
			if tc.self != "" {
				h.lookAtFleet(t.Context(), insp, tc.self)
			}
			task, p := newLeadTask(t)
			if err := h.ProcessTask(t.Context(), task); err != nil {
				t.Fatal(err)
			}
			n, err := rc.Exists(t.Context(), rdb.LegacyDeliveredKey(p.ID), rdb.DeliveredKey(p.ID)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := n == 2; got != tc.wantLegacy {
				t.Errorf("markers written: %d of 2, want the previous version's too: %v", n, tc.wantLegacy)
			}
		})
	}
}
