package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

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
	req, _ := http.NewRequest(http.MethodPost, site+"/v1/leads/batch", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
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
