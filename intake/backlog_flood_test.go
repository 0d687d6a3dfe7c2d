package intake

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/producer"
)

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
