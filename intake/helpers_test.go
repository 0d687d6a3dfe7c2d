package intake

import (
	"context"
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
	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/status"
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
		rdb = redistest.MiniClient(t)
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

// taskPayload is the payload of the task of lead id; a lead not
// enqueued fails t.
func (e *env) taskPayload(t *testing.T, id string) []byte {
	t.Helper()
	info, err := asynq.NewInspectorFromRedisClient(e.rdb).GetTaskInfo("leads", id)
	if err != nil {
		t.Fatalf("lead %s not enqueued: %v", id, err)
	}
	return info.Payload
}

// payload is the enqueued payload of lead id; a lead not enqueued, or a
// payload that does not parse, fails t.
func (e *env) payload(t *testing.T, id string) lead.Payload {
	t.Helper()
	p, err := lead.ParsePayload(e.taskPayload(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// enqueued returns the lead an answer's id names.
func (e *env) enqueued(t *testing.T, id string) lead.Lead {
	t.Helper()
	return e.payload(t, id).Lead
}

// successID is the lead id of a drop-in success answer; any other answer
// fails t.
func successID(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	m := successRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("answer = %s, want the CRM's success shape", rec.Body)
	}
	return m[1]
}

// acceptedID is the lead id of a drop-in success answer or of the JSON
// API's 202, or "" for any other answer.
func acceptedID(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if m := successRE.FindStringSubmatch(rec.Body.String()); m != nil {
		return m[1]
	}
	if rec.Code == http.StatusAccepted {
		id, _ := decodeBody(t, rec)["id"].(string)
		return id
	}
	return ""
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

// failingPublisher answers every Publish with err; while err is nil it
// passes Publish to the Publisher it wraps.
type failingPublisher struct {
	Publisher
	err error
}

func (p *failingPublisher) Publish(ctx context.Context, site string, l lead.Lead, key string) (producer.Receipt, error) {
	if p.err == nil {
		return p.Publisher.Publish(ctx, site, l, key)
	}
	return producer.Receipt{}, p.err
}

// statusPublisher is a Publisher that answers every status read with st.
type statusPublisher struct {
	Publisher
	st status.Status
}

func (p statusPublisher) Status(context.Context, string, string) (status.Status, error) {
	return p.st, nil
}
