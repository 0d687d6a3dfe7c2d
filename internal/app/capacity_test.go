package app

import (
	"encoding/json"
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

// TestMemoryGuard is the memory part of finding H3 against a real
// redis-server: once used_memory reaches the guard's share of maxmemory,
// intake refuses new leads with 503 and Retry-After, and the room left
// takes the writes of the leads already in (a delivered marker).
func TestMemoryGuard(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rds := redistest.Start(t)
	c := rds.Client()
	site, _ := runIntakeOn(t, rds, map[string]string{"LEADRELAY_REDIS_MEMORY_GUARD": "0.5", "LEADRELAY_SITE_RATE_LIMIT": "0", "LEADRELAY_GLOBAL_RATE_LIMIT": "0"})
	tests := []struct {
		name   string
		factor float64 // maxmemory as a multiple of the memory in use
		want   int
	}{
		{"room", 4, http.StatusAccepted},
		{"past half of maxmemory", 1.5, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		// Measured at each step: the first lead opens connections and
		// loads scripts, whose buffers count in used_memory too.
		maxmemory := int64(tc.factor * float64(usedMemory(t, rds)))
		if err := c.ConfigSet(ctx, "maxmemory", strconv.FormatInt(maxmemory, 10)).Err(); err != nil {
			t.Fatal(err)
		}
		var code int
		var retry string
		// The probe reads INFO at most once a second: ask until it has.
		deadline := time.Now().Add(10 * time.Second)
		for code, retry = postLead(t, site, siteKey, annLead); code != tc.want && time.Now().Before(deadline); code, retry = postLead(t, site, siteKey, annLead) {
			time.Sleep(100 * time.Millisecond)
		}
		if code != tc.want {
			t.Fatalf("%s: %d, want %d", tc.name, code, tc.want)
		}
		if code == http.StatusServiceUnavailable && retry != "60" {
			t.Errorf("%s: Retry-After %q, want 60", tc.name, retry)
		}
	}
	if err := c.Set(ctx, "leadrelay:delivered:ld_0123456789abcdef01234567", "x", time.Hour).Err(); err != nil {
		t.Errorf("a delivered marker could not be written under the guard: %v", err)
	}
}

// TestBacklogCaps is finding H3 through the whole intake process: the lead
// store counts what the producer stored, nothing drains (no worker runs),
// and the caps set in the environment refuse what does not fit, with
// Retry-After and nothing stored.
func TestBacklogCaps(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	site, _ := runIntakeOn(t, rds, map[string]string{
		"LEADRELAY_SITES":           "shop=site-key-0123456789abcdef,blog=blog-key-0123456789abcdef",
		"LEADRELAY_SITE_MAX_QUEUED": "3", "LEADRELAY_MAX_QUEUED": "5",
		"LEADRELAY_SITE_RATE_LIMIT": "0", "LEADRELAY_GLOBAL_RATE_LIMIT": "0",
	})
	const shop, blog = siteKey, "blog-key-0123456789abcdef"
	steps := []struct {
		name string
		key  string
		want int
	}{
		{"shop 1", shop, 202}, {"shop 2", shop, 202}, {"shop 3", shop, 202},
		{"shop past its cap", shop, 429},
		{"blog 1", blog, 202}, {"blog 2", blog, 202},
		{"blog past the global cap", blog, 503},
		{"shop still refused", shop, 429},
	}
	for i, s := range steps {
		code, retry := postLead(t, site, s.key, fmt.Sprintf(`{"title":"Ann %d","email":"ann%d@example.com"}`, i, i))
		if code != s.want {
			t.Errorf("%s: %d, want %d", s.name, code, s.want)
		}
		if code != 202 && retry != "60" {
			t.Errorf("%s: Retry-After %q, want 60", s.name, retry)
		}
	}
	qi, err := asynq.NewInspectorFromRedisClient(rds.Client()).GetQueueInfo("leads")
	if err != nil || qi.Size != 5 {
		t.Errorf("queued %v (%v), want the 5 accepted", qi, err)
	}
}

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

// blogKey is the second site's key in TestOneSiteCannotHaltIntake.
const blogKey = "blog-key-fedcba9876543210"

// TestOneSiteCannotHaltIntake is issue 18's finding 1 against a real
// redis-server of maxmemory 40mb, as the review's repro: one site sends
// batches of 15 leads of a 31,900-character description while a worker
// delivers them. Each delivered task keeps its payload for
// LEADRELAY_DEDUP_TTL, which the per-site caps (undelivered leads) did not
// count, so the memory guard then refused every site: another site's
// ordinary lead got 503 for about a day. Now each site keeps at most its
// share of the guard's bound, counted in bytes at admission for as long
// as a lead may be kept: the flooding site gets 429 naming its share, and
// the other site's lead is 202 and delivered.
func TestOneSiteCannotHaltIntake(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rds := redistest.Start(t)
	if err := rds.Client().ConfigSet(ctx, "maxmemory", "40mb").Err(); err != nil {
		t.Fatal(err)
	}
	sim, crmURL := hatest.StartSim(t, 0)
	env := map[string]string{
		"LEADRELAY_SITES":           "shop=" + siteKey + ",blog=" + blogKey,
		"LEADRELAY_SITE_RATE_LIMIT": "0", "LEADRELAY_GLOBAL_RATE_LIMIT": "0", "LEADRELAY_SITE_LEAD_RATE_LIMIT": "0",
		"LEADRELAY_CRM_URL": crmURL, "LEADRELAY_CRM_API": "v2", "LEADRELAY_CRM_LOGIN": "admin@example.com",
		"LEADRELAY_CRM_APIKEY": hatest.CRMKey, "LEADRELAY_CRM_MAX_CONCURRENT": "0", "LEADRELAY_CRM_RATE_LIMIT": "0",
		"LEADRELAY_RETRY_INITIAL": "100ms", "LEADRELAY_RETRY_MAX_DELAY": "1s",
		"LEADRELAY_REDIS_MEMORY_GUARD": "0.8",
	}
	site, _ := runIntakeOn(t, rds, env)
	runRole(t, rds, Roles{Worker: true}, env, zap.NewNop())

	description := strings.Repeat("x", 31900)
	refused, accepted := 0, 0
	for b := 0; b < 80 && refused == 0; b++ {
		var items []string
		for i := range 15 {
			items = append(items, fmt.Sprintf(`{"idempotency_key":"flood-%d-%d","lead":{"title":"Flood %d %d","description":%q}}`, b, i, b, i, description))
		}
		statuses := postBatch(t, site, siteKey, `{"leads":[`+strings.Join(items, ",")+`]}`)
		for _, s := range statuses {
			switch s {
			case http.StatusAccepted:
				accepted++
			default:
				refused = s
			}
		}
	}
	t.Logf("the flooding site: %d leads accepted, then %d; used_memory %d of 40 MB", accepted, refused, usedMemory(t, rds))
	if refused != http.StatusTooManyRequests {
		t.Errorf("the flooding site's refusal: %d, want 429 (its share)", refused)
	}
	if code, _ := postLead(t, site, blogKey, `{"title":"Blog reader","email":"reader@blog.example"}`); code != http.StatusAccepted {
		t.Fatalf("another site's ordinary lead: %d, want 202", code)
	}
	delivered := hatest.WaitFor(60*time.Second, 100*time.Millisecond, func() bool {
		for _, l := range sim.Leads() {
			if l.Email == "reader@blog.example" {
				return true
			}
		}
		return false
	})
	if !delivered {
		t.Errorf("another site's lead was not delivered within 60s")
	}
}

// postBatch posts a batch with a site's key and returns each lead's
// http_status (a batch refused whole: its own status, once).
func postBatch(t *testing.T, site, key, body string) []int {
	t.Helper()
	resp, err := http.DefaultClient.Do(sitePost(site, "/v1/leads/batch", key, body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Results []struct {
			Status int `json:"http_status"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK {
		return []int{resp.StatusCode}
	}
	out := make([]int, len(ans.Results))
	for i, r := range ans.Results {
		out[i] = r.Status
	}
	return out
}
