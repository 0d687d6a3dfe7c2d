package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const (
	opsUser = "ops"
	opsPass = "a-long-ops-password"
)

// okHandler stands for the ops routes: it answers 204 and counts calls.
type okHandler struct {
	mu    sync.Mutex
	calls int
}

func (h *okHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	h.calls++
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

type opsReq struct {
	method, path, host, remote string
	auth                       bool
	header                     map[string]string
	body                       string
}

func (q opsReq) build() *http.Request {
	var r *http.Request
	if q.body != "" {
		r = httptest.NewRequest(q.method, q.path, strings.NewReader(q.body))
	} else {
		r = httptest.NewRequest(q.method, q.path, nil)
	}
	r.Host = q.host
	if r.Host == "" {
		r.Host = "127.0.0.1:8081"
	}
	r.RemoteAddr = q.remote
	if r.RemoteAddr == "" {
		r.RemoteAddr = "127.0.0.1:40000"
	}
	if q.auth {
		r.SetBasicAuth(opsUser, opsPass)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	return r
}

// crossSite are the headers a browser adds to a request a foreign page
// makes, e.g. a form or fetch with Content-Type text/plain (no preflight).
var crossSite = map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}

// TestOpsGuard: each attack on the ops listener of the review, and what it
// gets now. H1: a client behind a proxy on the same host is loopback to
// the relay, and so was let in. M2: a cross-origin POST paused the queue or
// requeued a lead; a DNS-rebinding Host was answered.
func TestOpsGuard(t *testing.T) {
	t.Parallel()
	authed := OpsGuardOptions{User: opsUser, Password: opsPass, Hosts: []string{"ops.example.com"}}
	tests := []struct {
		name   string
		o      OpsGuardOptions
		req    opsReq
		want   int
		served bool
	}{
		{"H1 loopback (a local TLS proxy) without credentials", OpsGuardOptions{}, opsReq{method: "GET", path: "/ops/dead"}, 401, false},
		{"H1 forwarded client without credentials", OpsGuardOptions{}, opsReq{method: "GET", path: "/metrics", header: map[string]string{"X-Forwarded-For": "203.0.113.9"}}, 401, false},
		{"H1 credentials set, none sent", authed, opsReq{method: "GET", path: "/ui/"}, 401, false},
		{"credentials", authed, opsReq{method: "GET", path: "/ui/", auth: true}, 204, true},
		{"wrong password", authed, opsReq{method: "GET", path: "/ui/", header: map[string]string{"Authorization": "Basic b3BzOm5vcGU="}}, 401, false},
		{"explicit opt-out", OpsGuardOptions{Open: true}, opsReq{method: "GET", path: "/ops/dead"}, 204, true},
		{"M2 cross-origin pause, authenticated", authed, opsReq{method: "POST", path: "/ui/api/queues/leads:pause", auth: true, header: crossSite}, 403, false},
		{"M2 cross-origin pause, open demo", OpsGuardOptions{Open: true}, opsReq{method: "POST", path: "/ui/api/queues/leads:pause", header: crossSite}, 403, false},
		{"M2 cross-origin requeue", authed, opsReq{method: "POST", path: "/ops/dead/ld_0123456789abcdef01234567/requeue", auth: true, header: crossSite}, 403, false},
		{"M2 origin only (older browser)", authed, opsReq{method: "POST", path: "/ui/api/queues/leads:pause", auth: true, header: map[string]string{"Origin": "https://evil.example"}}, 403, false},
		{"same-origin pause from the UI", authed, opsReq{method: "POST", path: "/ui/api/queues/leads:pause", auth: true,
			header: map[string]string{"Origin": "http://127.0.0.1:8081", "Sec-Fetch-Site": "same-origin"}}, 204, true},
		{"curl pause (no browser headers)", authed, opsReq{method: "POST", path: "/ui/api/queues/leads:pause", auth: true}, 204, true},
		{"cross-origin read is the browser's to withhold", authed, opsReq{method: "GET", path: "/ops/dead", auth: true, header: crossSite}, 204, true},
		{"M2 DNS rebinding Host", authed, opsReq{method: "GET", path: "/ops/dead", auth: true, host: "rebind.evil.example:8081"}, 421, false},
		{"M2 DNS rebinding Host, open demo", OpsGuardOptions{Open: true}, opsReq{method: "GET", path: "/ops/dead", host: "rebind.evil.example:8081"}, 421, false},
		{"listed Host", authed, opsReq{method: "GET", path: "/ops/dead", auth: true, host: "OPS.example.com."}, 204, true},
		{"localhost", authed, opsReq{method: "GET", path: "/ops/dead", auth: true, host: "localhost:8081"}, 204, true},
		{"IPv6 literal", authed, opsReq{method: "GET", path: "/ops/dead", auth: true, host: "[::1]:8081"}, 204, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next := &okHandler{}
			rec := httptest.NewRecorder()
			OpsGuard(next, tc.o, nil).ServeHTTP(rec, tc.req.build())
			if rec.Code != tc.want || (next.calls > 0) != tc.served {
				t.Errorf("%s %s = %d (served %v), want %d (served %v): %s", tc.req.method, tc.req.path, rec.Code, next.calls > 0, tc.want, tc.served, rec.Body)
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("no anti-framing headers: %v", rec.Header())
			}
		})
	}
}

// TestOpsAudit is the rest of M3: an action left no log line. Every
// action gets one with who, from where, what and which leads; reads do not.
func TestOpsAudit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		req   opsReq
		lines int
		want  []string
	}{
		{"requeue one", opsReq{method: "POST", path: "/ops/dead/ld_0123456789abcdef01234567/requeue", auth: true}, 1, []string{"ld_0123456789abcdef01234567"}},
		{"batch delete", opsReq{method: "POST", path: "/ui/api/queues/leads/archived_tasks:batch_delete", auth: true,
			body: `{"task_ids":["ld_aaaaaaaaaaaaaaaaaaaaaaaa","ld_bbbbbbbbbbbbbbbbbbbbbbbb"]}`}, 1, []string{"ld_aaaaaaaaaaaaaaaaaaaaaaaa", "ld_bbbbbbbbbbbbbbbbbbbbbbbb"}},
		{"pause", opsReq{method: "POST", path: "/ui/api/queues/leads:pause", auth: true}, 1, nil},
		{"refused cross-origin", opsReq{method: "DELETE", path: "/ui/api/queues/leads/archived_tasks/ld_cccccccccccccccccccccccc", auth: true, header: crossSite}, 1, []string{"ld_cccccccccccccccccccccccc"}},
		{"a read", opsReq{method: "GET", path: "/ops/dead", auth: true}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zapcore.InfoLevel)
			h := OpsGuard(&okHandler{}, OpsGuardOptions{User: opsUser, Password: opsPass}, zap.New(core))
			h.ServeHTTP(httptest.NewRecorder(), tc.req.build())
			lines := logs.FilterMessage("ops action").All()
			if len(lines) != tc.lines {
				t.Fatalf("%d audit lines, want %d", len(lines), tc.lines)
			}
			if tc.lines == 0 {
				return
			}
			f := lines[0].ContextMap()
			if f["method"] != tc.req.method || f["path"] != tc.req.path || f["client"] != "127.0.0.1" {
				t.Errorf("audit line = %v", f)
			}
			if tc.req.header == nil && f["user"] != opsUser {
				t.Errorf("audit user = %v", f["user"])
			}
			ids, _ := f["lead_ids"].([]any)
			if len(ids) != len(tc.want) {
				t.Fatalf("lead_ids = %v, want %v", ids, tc.want)
			}
			for i, id := range tc.want {
				if ids[i] != id {
					t.Errorf("lead_ids = %v, want %v", ids, tc.want)
				}
			}
		})
	}
}
