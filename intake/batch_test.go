package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"leadrelay/lead"
	"leadrelay/producer"
)

// reusedKey is the key keyReuser refuses as reused with another lead.
const reusedKey = "reused-key"

// keyReuser answers reusedKey as producer does for a key reused with a
// different lead.
type keyReuser struct{ Publisher }

func (k keyReuser) Publish(ctx context.Context, site string, l lead.Lead, key string) (producer.Receipt, error) {
	if key == reusedKey {
		return producer.Receipt{}, fmt.Errorf("publish: %w", producer.ErrKeyReused)
	}
	return k.Publisher.Publish(ctx, site, l, key)
}

func batchPost(body, key string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/leads/batch", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

type batchAnswerT struct {
	Results []struct {
		Index          int    `json:"index"`
		IdempotencyKey string `json:"idempotency_key"`
		Status         int    `json:"http_status"`
		State          string `json:"status"`
		ID             string `json:"id"`
		Duplicate      bool   `json:"duplicate"`
		Error          string `json:"error"`
		Fields         []struct {
			Field, Problem string
		} `json:"fields"`
	} `json:"results"`
	Accepted, Duplicates, Refused int
}

// TestBatch: each lead of a batch has its own key and its own result.
func TestBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.h = New(Options{Sites: map[string]string{"shop": shopKey}}, keyReuser{producer.New(e.rdb, producer.Options{Queue: "leads"}, nil)}, nil)
	body := `{"leads":[
		{"idempotency_key":"k1","lead":{"title":"Ann","email":"ann@example.com"}},
		{"idempotency_key":"k1","lead":{"title":"Ann","email":"ann@example.com"}},
		{"idempotency_key":"k2","lead":{"email":"not-mail"}},
		{"idempotency_key":"` + reusedKey + `","lead":{"title":"Bob"}},
		{"idempotency_key":"bad\u0007key","lead":{"title":"Cy"}},
		{"lead":{"title":"Dee","color":"red"}},
		{"lead":{"title":"Eve"}},
		{"lead":{"title":"Eve"}}
	]}`
	rec := e.do(t, batchPost(body, shopKey))
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var ans batchAnswerT
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status int
		inErr  string
	}{{202, ""}, {200, ""}, {400, "invalid lead"}, {422, "already used for a different lead"}, {400, "printable ASCII"}, {400, ""}, {202, ""}, {202, ""}}
	if len(ans.Results) != len(want) {
		t.Fatalf("%d results, want %d: %s", len(ans.Results), len(want), rec.Body)
	}
	for i, w := range want {
		r := ans.Results[i]
		if r.Index != i || r.Status != w.status || !strings.Contains(r.Error, w.inErr) {
			t.Errorf("lead %d: %+v, want status %d with %q", i, r, w.status, w.inErr)
		}
	}
	if ans.Results[1].ID != ans.Results[0].ID || !ans.Results[1].Duplicate {
		t.Errorf("repeat of k1 = %+v, want a duplicate of %s", ans.Results[1], ans.Results[0].ID)
	}
	// A keyless repeat is the same lead, answered as new (nobody learns
	// that the content was sent before).
	if last := ans.Results[7]; last.ID != ans.Results[6].ID || last.Duplicate {
		t.Errorf("keyless repeat of Eve = %+v, want the answer %s got", last, ans.Results[6].ID)
	}
	if len(ans.Results[2].Fields) == 0 || ans.Results[2].Fields[0].Field != "email" {
		t.Errorf("invalid lead names no field: %+v", ans.Results[2])
	}
	if ans.Accepted != 3 || ans.Duplicates != 1 || ans.Refused != 4 || e.queueSize(t) != 2 {
		t.Errorf("counts %d/%d/%d, queue %d; want 3/1/4, 2", ans.Accepted, ans.Duplicates, ans.Refused, e.queueSize(t))
	}
}

// TestBatchRefused: a batch that cannot be read is refused whole, with a
// clear error, and nothing is queued.
func TestBatchRefused(t *testing.T) {
	t.Parallel()
	many := make([]string, MaxBatchLeads+1)
	for i := range many {
		many[i] = `{"lead":{"title":"x"}}`
	}
	tests := []struct {
		name   string
		req    *http.Request
		status int
		inErr  string
	}{
		{"empty", batchPost(`{"leads":[]}`, shopKey), 400, "empty or missing"},
		{"no leads key", batchPost(`{"items":[]}`, shopKey), 400, "unknown field"},
		{"over 100", batchPost(`{"leads":[`+strings.Join(many, ",")+`]}`, shopKey), 400, "at most 100"},
		{"not JSON", batchPost(`leads`, shopKey), 400, "body must be"},
		{"trailing data", batchPost(`{"leads":[{"lead":{"title":"x"}}]} {}`, shopKey), 400, "after the batch"},
		{"too large", batchPost(`{"leads":[{"lead":{"title":"`+strings.Repeat("a", MaxBatchBytes)+`"}}]}`, shopKey), 413, "larger than"},
		{"wrong key", batchPost(`{"leads":[{"lead":{"title":"x"}}]}`, "wrong-wrong-wrong-wrong"), 401, "unknown site key"},
		{"form body", func() *http.Request {
			r := batchPost(`title=x`, shopKey)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(), 415, "application/json"},
		{"GET", httptest.NewRequest(http.MethodGet, "/v1/leads/batch", nil), 405, "POST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			rec := e.do(t, tc.req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.inErr) {
				t.Errorf("%d %.300s, want %d with %q", rec.Code, rec.Body, tc.status, tc.inErr)
			}
			if n := e.queueSize(t); n != 0 {
				t.Errorf("%d leads queued from a refused batch", n)
			}
		})
	}
}

// TestBatchLimits: a batch is one request against the site's rate limit
// and its number of leads against the lead budget.
func TestBatchLimits(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(e *env, o *Options) {
		// A stopped clock: what is refused does not depend on how long
		// the batch takes to store.
		clock := func() time.Time { return time.Unix(1_800_000_000, 0) }
		o.Limiter = NewRedisLimiter(e.rdb, 2, 0, WithRateClock(clock)) // two requests, burst 2
		b := NewRedisLeadBudget(e.rdb, 1).(*RedisLeadBudget)
		b.clock = clock
		o.LeadBudget = b
	})
	leads := func(n, from int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"lead":{"title":"Lead %d"}}`, from+i)
		}
		return `{"leads":[` + strings.Join(items, ",") + `]}`
	}
	if rec := e.do(t, batchPost(leads(MaxBatchLeads, 0), shopKey)); rec.Code != http.StatusOK {
		t.Fatalf("first batch of 100 (one request, the budget's burst): %d %.300s", rec.Code, rec.Body)
	}
	rec := e.do(t, batchPost(leads(1, 1000), shopKey))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "too many leads") {
		t.Errorf("over the lead budget: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	rec = e.do(t, batchPost(leads(1, 2000), shopKey))
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "site limit") {
		t.Errorf("third request over the request limit: %d %s", rec.Code, rec.Body)
	}
	if n := e.queueSize(t); n != MaxBatchLeads {
		t.Errorf("queue = %d, want %d", n, MaxBatchLeads)
	}
}
