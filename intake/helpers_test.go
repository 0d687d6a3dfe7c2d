package intake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"leadrelay/internal/redistest"
	"leadrelay/producer"
)

const (
	shopKey = "shop-key-0123456789abcdef"
	blogKey = "blog-key-fedcba9876543210"
	// The seed's example: login vladislav@isaler.ru with its apikey.
	seedLogin = "vladislav@isaler.ru"
	seedKey   = "aMgiCQyj8bCToNc47BZZYrRICoWSIl"
	// plusKey needs the v1 double encoding: a once-decoded + is a space.
	plusKey = "plus+key/with%chars=="
)

var allKeys = []string{shopKey, blogKey, seedKey, plusKey}

type env struct {
	h    http.Handler
	pub  *producer.Publisher
	rdb  *redis.Client
	logs *observer.ObservedLogs
}

// newEnv builds intake over a real producer on rdb (miniredis when nil).
func newEnv(t *testing.T, rdb *redis.Client) *env {
	t.Helper()
	return newEnvWith(t, rdb, nil)
}

// newEnvWith is newEnv with Options adjusted by opts, which may read e.rdb.
func newEnvWith(t *testing.T, rdb *redis.Client, opts func(e *env, o *Options)) *env {
	t.Helper()
	if rdb == nil {
		m := redistest.Mini(t)
		rdb = redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { rdb.Close() })
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	sites := map[string]string{"shop": shopKey, "blog": blogKey, seedLogin: seedKey, "plus": plusKey}
	e := &env{rdb: rdb, logs: logs}
	o := Options{Sites: sites}
	if opts != nil {
		opts(e, &o)
	}
	// As the app wires them: the publisher holds each lead to the caps
	// that intake checks a batch against.
	e.pub = producer.New(rdb, producer.Options{Queue: "leads", SiteMax: o.Capacity.SiteMax, TotalMax: o.Capacity.TotalMax}, log)
	e.h = New(o, e.pub, log)
	t.Cleanup(func() { e.checkLogs(t) })
	return e
}

// do serves req and checks that no key leaked into the answer.
func (e *env) do(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, k := range allKeys {
		if strings.Contains(body, k) {
			t.Errorf("answer holds a site key: %s", body)
		}
	}
	return rec
}

// checkLogs fails if a key is in any log line, or personal data in a line
// above debug.
func (e *env) checkLogs(t *testing.T) {
	t.Helper()
	for _, entry := range e.logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		line := entry.Message + " " + string(b)
		for _, k := range allKeys {
			if strings.Contains(line, k) {
				t.Errorf("log line holds a site key: %s", line)
			}
		}
		if entry.Level > zapcore.DebugLevel {
			for _, pd := range []string{"ann@example.com", "Андреев", "vladislav@god.ry", "+79001234567"} {
				if strings.Contains(line, pd) {
					t.Errorf("%s log line holds personal data: %s", entry.Level, line)
				}
			}
		}
	}
}

func (e *env) queueSize(t *testing.T) int {
	t.Helper()
	qi, err := asynq.NewInspectorFromRedisClient(e.rdb).GetQueueInfo("leads")
	if err != nil {
		return 0 // no queue yet: nothing was ever enqueued
	}
	return qi.Size
}

func jsonPost(body, key string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/leads", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return req
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, rec.Body.String())
	}
	return m
}

// hidden hides a reader's length, so the server sees a chunked body.
type hidden struct{ io.Reader }
