package app

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// TestMemoryGuardDrains is issue 17.5's full Redis against a real
// redis-server with a small maxmemory: a backlog taken in up to the guard
// while no worker runs must still drain once one does. The guard counted
// only the memory in use, so the backlog filled it and delivery, which
// keeps more per lead (the completed task, the marker, the claim), ran
// Redis out of memory: markers unwritten, dequeues refused, the drain
// stuck and intake refusing ever after. Every lead taken in must reach
// the CRM once, the queue empty, and intake take leads again.
func TestMemoryGuardDrains(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rds := redistest.Start(t)
	sim, crmURL := hatest.StartSim(t, 0)
	env := map[string]string{
		"LEADRELAY_REDIS_MEMORY_GUARD": "0.9", "LEADRELAY_SITE_RATE_LIMIT": "0", "LEADRELAY_GLOBAL_RATE_LIMIT": "0",
		// One site fills the whole guard here: the global guard is under test.
		"LEADRELAY_SITE_MEMORY_SHARE": "1",
		"LEADRELAY_CRM_URL":           crmURL, "LEADRELAY_CRM_API": "v2", "LEADRELAY_CRM_LOGIN": "admin@example.com",
		"LEADRELAY_CRM_APIKEY": hatest.CRMKey, "LEADRELAY_CRM_MAX_CONCURRENT": "0", "LEADRELAY_CRM_RATE_LIMIT": "0",
		"LEADRELAY_RETRY_INITIAL": "100ms", "LEADRELAY_RETRY_MAX_DELAY": "1s",
	}
	site, _ := runIntakeOn(t, rds, env)
	// The worker runs from the start, its queue paused: its connections
	// and scripts are in the memory the guard reads from the first lead.
	insp := asynq.NewInspectorFromRedisClient(rds.Client())
	if err := insp.PauseQueue(lead.DefaultQueue); err != nil {
		t.Fatal(err)
	}
	runRole(t, rds, Roles{Worker: true}, env, zap.NewNop())
	time.Sleep(time.Second) // let it connect (no assertion rests on this)
	used := usedMemory(t, rds)
	limit := used + 3<<20
	if err := rds.Client().ConfigSet(ctx, "maxmemory", strconv.FormatInt(limit, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	// Take leads in until the guard refuses them (no worker runs yet).
	var accepted, seq atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := seq.Add(1); i < 20000; i = seq.Add(1) {
				switch code, _ := postLead(t, site, siteKey, leadN(int(i))); code {
				case http.StatusAccepted:
					accepted.Add(1)
				case http.StatusServiceUnavailable:
					return
				default:
					t.Errorf("lead %d: %d", i, code)
					return
				}
			}
		}()
	}
	wg.Wait()
	n, full := int(accepted.Load()), usedMemory(t, rds)
	t.Logf("guard refused after %d leads: used_memory %d of maxmemory %d", n, full, limit)
	if n < 100 {
		t.Fatalf("only %d leads taken in before the guard refused", n)
	}
	if float64(full) > 0.9*float64(limit) {
		t.Errorf("intake overshot the guard: used_memory %d past 0.9 of maxmemory %d", full, limit)
	}

	if err := insp.UnpauseQueue(lead.DefaultQueue); err != nil {
		t.Fatal(err)
	}
	drained := hatest.WaitFor(60*time.Second, 100*time.Millisecond, func() bool {
		q, err := insp.GetQueueInfo(lead.DefaultQueue)
		return err == nil && q.Pending+q.Active+q.Scheduled+q.Retry == 0 && len(sim.Leads()) >= n
	})
	q, _ := insp.GetQueueInfo(lead.DefaultQueue)
	if !drained {
		t.Fatalf("backlog not drained within 60s: %+v; the CRM holds %d of %d; used_memory %d of %d",
			q, len(sim.Leads()), n, usedMemory(t, rds), limit)
	}
	if got := len(sim.Leads()); got != n {
		t.Errorf("the CRM holds %d leads, want the %d taken in", got, n)
	}
	t.Logf("drained: used_memory %d of maxmemory %d", usedMemory(t, rds), limit)
	// The backlog drained: the guard lets leads in again.
	var code int
	hatest.WaitFor(5*time.Second, 100*time.Millisecond, func() bool {
		code, _ = postLead(t, site, siteKey, leadN(-1))
		return code == http.StatusAccepted
	})
	if code != http.StatusAccepted {
		t.Errorf("a lead after the drain: %d, want 202", code)
	}
}

// usedMemory is the server's used_memory.
func usedMemory(t *testing.T, rds *redistest.Server) int64 {
	t.Helper()
	n, err := strconv.ParseInt(rds.Info("used_memory"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// leadN is lead i as a typical site's form sends it: about 300 bytes.
func leadN(i int) string {
	return fmt.Sprintf(`{"title":"Ann %d","email":"ann%d@example.com","phone":"+7900123%04d","company":"Example %d",`+
		`"description":"%s"}`, i, i, i, i, strings.Repeat("please call me back about the offer ", 6))
}
