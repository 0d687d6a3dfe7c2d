package intake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/producer"
)

// fakeBacklog reports fixed counts, or err.
type fakeBacklog struct {
	site, total int64
	err         error
}

func (f fakeBacklog) Backlog(context.Context, string) (int64, int64, error) {
	return f.site, f.total, f.err
}

// fakeMemory reports fixed memory figures, or err.
type fakeMemory struct {
	used, limit int64
	err         error
}

func (f fakeMemory) Memory(context.Context) (int64, int64, error) { return f.used, f.limit, f.err }

// TestCapacity is finding H3: intake admitted leads without bound while the
// CRM drained far fewer, so one public browser key could fill Redis and
// take intake and the workers' delivered markers down for every site. Past
// a cap a lead is refused with Retry-After before anything is stored. The
// counts are real: leads published first, through the real store.
func TestCapacity(t *testing.T) {
	t.Parallel()
	const siteMax, totalMax = 10, 20
	batch := func(n int) *http.Request {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"lead":{"title":"Lead %d"}}`, i)
		}
		return batchPost(`{"leads":[`+strings.Join(items, ",")+`]}`, shopKey)
	}
	drop := func() *http.Request {
		return dropGet("login=shop&apikey=" + url.QueryEscape(shopKey) + "&action=add&title=Bob")
	}
	ann := func() *http.Request { return jsonPost(`{"title":"Ann"}`, shopKey) }
	tests := []struct {
		name   string
		pre    map[string]int // leads each site has waiting
		broken bool           // the counts and the memory cannot be read
		memory MemoryProbe
		req    func() *http.Request
		status int
		inBody string
		stored int
	}{
		{"room", map[string]int{"shop": 3}, false, nil, ann, 202, "", 1},
		{"site at its cap", map[string]int{"shop": siteMax}, false, nil, ann, 429, "10 undelivered leads", 0},
		{"all sites at the cap", map[string]int{"shop": 2, "blog": siteMax, "plus": 8}, false, nil, ann, 503, "backlog is full", 0},
		{"batch past the site's cap", map[string]int{"shop": siteMax - 3}, false, nil, func() *http.Request { return batch(5) }, 429, "undelivered", 0},
		{"batch that fits", map[string]int{"shop": siteMax - 5}, false, nil, func() *http.Request { return batch(5) }, 200, `"accepted":5`, 5},
		{"drop-in past the cap", map[string]int{"shop": siteMax}, false, nil, drop, 429, "Ошибка добавления лида. this site has 10", 0},
		{"memory past the guard", nil, false, fakeMemory{used: 81, limit: 100}, ann, 503, "nearly full", 0},
		{"memory under the guard", nil, false, fakeMemory{used: 79, limit: 100}, ann, 202, "", 1},
		{"no maxmemory", nil, false, fakeMemory{used: 1 << 40, limit: 0}, ann, 202, "", 1},
		{"counts unreadable", nil, true, fakeMemory{err: errors.New("redis: down")}, func() *http.Request { return batch(2) }, 200, `"accepted":2`, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, nil, func(e *env, o *Options) {
				var backlog Backlog = BacklogFunc(func(ctx context.Context, site string) (int64, int64, error) {
					return rdb.New(e.rdb).Backlog(ctx, "leads", site)
				})
				if tc.broken {
					backlog = fakeBacklog{err: errors.New("redis: down")}
				}
				o.Capacity = Capacity{Backlog: backlog, SiteMax: siteMax, TotalMax: totalMax, Memory: tc.memory, MemoryShare: 0.8}
			})
			for site, n := range tc.pre {
				for i := range n {
					if _, err := e.pub.Publish(t.Context(), site, lead.Lead{Title: fmt.Sprintf("waiting %d", i)}, ""); err != nil {
						t.Fatalf("publish %s %d: %v", site, i, err)
					}
				}
			}
			before := e.queueSize(t)
			rec := e.do(t, tc.req())
			status := rec.Code
			if status == http.StatusOK && strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				status = apiStatus(rec)
			}
			if status != tc.status || !strings.Contains(rec.Body.String(), tc.inBody) {
				t.Errorf("%d %s, want %d with %q", rec.Code, rec.Body, tc.status, tc.inBody)
			}
			if (tc.status == 429 || tc.status == 503) && rec.Header().Get("Retry-After") != "60" {
				t.Errorf("Retry-After = %q, want 60", rec.Header().Get("Retry-After"))
			}
			if got := e.queueSize(t) - before; got != tc.stored {
				t.Errorf("%d leads stored, want %d", got, tc.stored)
			}
		})
	}
}

// TestBacklogFlood is finding H3 end to end against a real redis-server,
// with the real producer and the lead store's backlog counts: a hostile
// site floods intake, every request a new lead, while nothing is
// delivered (no worker runs). Intake takes exactly the site's cap, refuses the rest with
// 429, and Redis grows by no more than the cap times one lead's bound. The
// figures it logs are the README's ("Protecting the intake").
func TestBacklogFlood(t *testing.T) {
	t.Parallel()
	const siteMax, extra = 200, 50
	// The largest body intake takes: 32,000 two-byte characters, 64 KB.
	largest := strings.Repeat("ж", 32000)
	tests := []struct {
		name, description string
	}{
		{"largest leads", largest},
		{"typical leads", "Please call me back about the offer on your web site, mornings are best."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rds := redistest.Start(t)
			rc := rds.Client()
			pub := producer.New(rc, producer.Options{Queue: "leads", DedupTTL: 24 * time.Hour, SiteMax: siteMax}, nil)
			store := rdb.New(rc)
			backlog := BacklogFunc(func(ctx context.Context, site string) (int64, int64, error) {
				return store.Backlog(ctx, "leads", site)
			})
			h := New(Options{Sites: map[string]string{"shop": shopKey}, Capacity: Capacity{Backlog: backlog, SiteMax: siteMax}}, pub, nil)
			before := heldMemory(t, rds)
			codes, bodyBytes := map[int]int{}, 0
			for i := range siteMax + extra {
				body := fmt.Sprintf(`{"title":"Ann Lee %d","email":"ann%d@example.com","phone":"+7900123%04d","description":%q}`, i, i, i, tc.description)
				bodyBytes = len(body)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, jsonPost(body, shopKey))
				codes[rec.Code]++
			}
			after := heldMemory(t, rds)
			if codes[http.StatusAccepted] != siteMax || codes[http.StatusTooManyRequests] != extra {
				t.Fatalf("answers %v, want %d accepted and %d refused", codes, siteMax, extra)
			}
			if n, _, _ := backlog.Backlog(t.Context(), "shop"); n != siteMax {
				t.Fatalf("stored %d leads, want the cap %d", n, siteMax)
			}
			perLead := (after - before) / siteMax
			// One lead's bound: its body plus the task's and the relay's keys.
			bound := int64(bodyBytes) + 8<<10
			t.Logf("%s: %d-byte bodies, a cap of %d: Redis held %d bytes more, %d per lead; a site at the default cap (10000) holds about %d MB",
				tc.name, bodyBytes, siteMax, after-before, perLead, perLead*10000/1_000_000)
			if perLead > bound {
				t.Errorf("Redis grew %d bytes per lead, more than the bound %d", perLead, bound)
			}
		})
	}
}

// heldMemory is what Redis holds for its data: used_memory without the
// clients' buffers and the AOF buffer, which a flood of 64 KiB requests
// fills and Redis empties again; they made the figure vary by 15 %.
func heldMemory(t *testing.T, rds *redistest.Server) int64 {
	t.Helper()
	var n int64
	for i, field := range []string{"used_memory", "mem_clients_normal", "mem_aof_buffer"} {
		v, err := strconv.ParseInt(rds.Info(field), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		if i == 0 {
			n += v
		} else {
			n -= v
		}
	}
	return n
}

func TestParseMemoryInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		info        string
		used, limit int64
		bad         bool
	}{
		{"both", "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:4194304\r\n", 1 << 20, 4 << 20, false},
		{"no limit", "used_memory:10\nmaxmemory:0\n", 10, 0, false},
		{"missing", "used_memory:10\n", 0, 0, true},
		{"garbled", "used_memory:ten\nmaxmemory:0\n", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			used, limit, err := parseMemoryInfo(tc.info)
			if (err != nil) != tc.bad || used != tc.used || limit != tc.limit {
				t.Errorf("parseMemoryInfo = %d, %d, %v", used, limit, err)
			}
		})
	}
}

// countingMemory reports settable figures and counts its readings.
type countingMemory struct {
	mu          sync.Mutex
	used, limit int64
	reads       int
}

func (c *countingMemory) Memory(context.Context) (int64, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.used, c.limit, nil
}

// TestMemoryGuardReads: far from the bound a reading serves a second and
// memoryReuse leads, so a flood costs Redis little; near it every lead
// reads afresh, so a burst cannot carry intake past the guard (issue
// 17.5: a reading cached for a second let intake reach 0.89–0.93 of
// maxmemory with a 0.8 guard). The projection counts what the backlog
// will add once delivered.
func TestMemoryGuardReads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		used      int64
		pending   int64
		leads     int // requests of one lead, within a second
		wantReads int
		wantFull  bool
	}{
		{"far from the bound", 10_000, 0, 10, 1, false},
		{"far, more leads than a reading serves", 10_000, 0, 2*memoryReuse + 1, 3, false},
		{"near the bound", 73_000, 0, 10, 10, false},
		{"the backlog's delivery would pass it", 50_000, 40, 3, 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := &countingMemory{used: tc.used, limit: 100_000}
			g := newMemoryGuard(Capacity{Memory: mem, MemoryShare: 0.8, DeliveredGrowth: 768,
				Backlog: fakeBacklog{total: tc.pending}})
			now := time.Unix(1_900_000_000, 0)
			g.now = func() time.Time { return now }
			var m memoryReading
			for range tc.leads {
				var err error
				if m, err = g.read(t.Context(), 1); err != nil {
					t.Fatal(err)
				}
			}
			if mem.reads != tc.wantReads || m.full() != tc.wantFull {
				t.Errorf("%d readings, full %v (projected %d of bound %.0f); want %d, %v",
					mem.reads, m.full(), m.projected(), m.bound(), tc.wantReads, tc.wantFull)
			}
			now = now.Add(memoryReadEvery)
			if _, err := g.read(t.Context(), 1); err != nil || mem.reads != tc.wantReads+1 {
				t.Errorf("a second later: %d readings (%v), want %d", mem.reads, err, tc.wantReads+1)
			}
		})
	}
}

// TestRedisMemoryReadsEveryPrimary: on a Redis Cluster the guard answers
// for the fullest primary. It read one node's INFO, so a full node that
// refuses the writes of the leads hashing to it went unseen.
func TestRedisMemoryReadsEveryPrimary(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	cc := cl.Client()
	ctx := t.Context()
	// Give each primary its own maxmemory; the last one is the fullest.
	limits := []int64{1 << 30, 1 << 30, 64 << 20}
	var fullest int64
	i := 0
	for _, addr := range cl.Addrs() {
		node := redis.NewClient(&redis.Options{Addr: addr})
		defer node.Close()
		if role, _ := node.Do(ctx, "ROLE").Slice(); len(role) == 0 || role[0] != "master" {
			continue
		}
		if err := node.ConfigSet(ctx, "maxmemory", strconv.FormatInt(limits[i%3], 10)).Err(); err != nil {
			t.Fatal(err)
		}
		if i%3 == 2 {
			fullest = limits[2]
		}
		i++
	}
	// A node picked at random is the fullest one time in three: ask ten
	// fresh probes.
	for range 10 {
		_, limit, err := NewRedisMemory(cc).Memory(ctx)
		if err != nil || limit != fullest {
			t.Fatalf("Memory = limit %d, %v; want the fullest primary's %d", limit, err, fullest)
		}
	}
}

// TestUnsafeRedisRefusesLeads: while Redis may lose what it stores (an
// evicting policy, no append-only file: Capacity.Unsafe), every surface
// refuses leads with 503 and Retry-After, stores nothing, and tells the
// site nothing of Redis's settings.
func TestUnsafeRedisRefusesLeads(t *testing.T) {
	t.Parallel()
	const problem = "Redis 127.0.0.1:6379 evicts keys when it is full (maxmemory-policy allkeys-lru)"
	reqs := map[string]func() *http.Request{
		"json":  func() *http.Request { return jsonPost(`{"title":"Ann"}`, shopKey) },
		"batch": func() *http.Request { return batchPost(`{"leads":[{"lead":{"title":"Ann"}}]}`, shopKey) },
		"drop-in": func() *http.Request {
			return dropGet("login=shop&apikey=" + url.QueryEscape(shopKey) + "&action=add&title=Bob")
		},
	}
	for name, req := range reqs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, nil, func(_ *env, o *Options) {
				o.Capacity = Capacity{Unsafe: func() string { return problem }}
			})
			rec := e.do(t, req())
			status := rec.Code
			if status == http.StatusOK && name == "drop-in" {
				status = apiStatus(rec)
			}
			if status != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "60" {
				t.Errorf("%d, Retry-After %q; want 503, 60", status, rec.Header().Get("Retry-After"))
			}
			if strings.Contains(rec.Body.String(), "maxmemory") {
				t.Errorf("the answer names Redis's settings to the site: %s", rec.Body)
			}
			if n := e.queueSize(t); n != 0 {
				t.Errorf("%d leads stored, want 0", n)
			}
		})
	}
}
