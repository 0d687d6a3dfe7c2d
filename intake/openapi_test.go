package intake

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"leadrelay/api"
	"leadrelay/producer"
	"leadrelay/status"
)

// loadSpec loads and validates the embedded OpenAPI document.
func loadSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("api/openapi.json does not load: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("api/openapi.json is not valid OpenAPI: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	doc.Servers = nil // route requests to any host
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// TestOpenAPIConformance sends a request to every documented operation and
// most documented answers, and validates the requests that should be
// valid and every answer against api/openapi.json: a route, a status or an
// answer shape that is not documented fails here.
func TestOpenAPIConformance(t *testing.T) {
	t.Parallel()
	doc, router := loadSpec(t)
	// The v1 drop-in labels its JSON text/html, as the CRM does.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.JSONBodyDecoder)

	shop := "login=shop&apikey=" + url.QueryEscape(shopKey)
	lim := func(e *env, o *Options) { o.Limiter = NewRedisLimiter(e.rdb, 0.001, 0) }
	plain := func(t *testing.T) *env { return newEnv(t, nil) }
	with := func(opts func(e *env, o *Options)) func(t *testing.T) *env {
		return func(t *testing.T) *env { return newEnvWith(t, nil, opts) }
	}
	pubStatus := func(st status.Status) func(t *testing.T) *env {
		return func(t *testing.T) *env {
			e := newEnv(t, nil)
			e.h = New(Options{Sites: map[string]string{"shop": shopKey}}, statusPublisher{st: st}, nil)
			return e
		}
	}
	pubErr := func(err error) func(t *testing.T) *env {
		return func(t *testing.T) *env {
			e := newEnv(t, nil)
			e.h = New(Options{Sites: map[string]string{"shop": shopKey}}, &failingPublisher{err: err}, nil)
			return e
		}
	}
	type req struct {
		method, target, ct, body string
		header                   map[string]string
	}
	bearer := map[string]string{"Authorization": "Bearer " + shopKey}
	keyed := map[string]string{"Authorization": "Bearer " + shopKey, "Idempotency-Key": "order-1"}
	tests := []struct {
		name    string
		env     func(t *testing.T) *env
		req     req
		invalid bool // the request breaks the spec on purpose
		twice   bool // send it twice; check the second answer
		status  int  // the HTTP status expected
	}{
		{"post lead", plain, req{"POST", "/v1/leads", "application/json", `{"title":"Ann","email":"ann@example.com"}`, bearer}, false, false, 202},
		{"post lead repeat", plain, req{"POST", "/v1/leads", "application/json", `{"title":"Ann"}`, keyed}, false, true, 200},
		{"post lead keyless repeat", plain, req{"POST", "/v1/leads", "application/json", `{"title":"Ann"}`, bearer}, false, true, 202},
		{"post lead invalid", plain, req{"POST", "/v1/leads", "application/json", `{"email":"not-mail","x":1}`, bearer}, true, false, 400},
		{"post lead no key", plain, req{"POST", "/v1/leads", "application/json", `{"title":"Ann"}`, nil}, false, false, 401}, // the key is checked by intake, not the validator
		{"post lead too large", plain, req{"POST", "/v1/leads", "application/json", `{"description":"` + strings.Repeat("a", 70<<10) + `"}`, bearer}, true, false, 413},
		{"post lead form", plain, req{"POST", "/v1/leads", "application/x-www-form-urlencoded", `title=Ann`, bearer}, true, false, 415},
		{"post lead key reused", pubErr(producer.ErrKeyReused), req{"POST", "/v1/leads", "application/json", `{"title":"Ann"}`, bearer}, false, false, 422},
		{"post lead redis down", pubErr(producer.ErrUnavailable), req{"POST", "/v1/leads", "application/json", `{"title":"Ann"}`, bearer}, false, false, 503},
		{"post lead rate limited", with(lim), req{"POST", "/v1/leads", "application/json", `{"title":"Ann"}`, bearer}, false, true, 429},
		{"post lead wrong origin", with(func(e *env, o *Options) { o.Origins = map[string][]string{"shop": {"https://shop.example"}} }),
			req{"POST", "/v1/leads", "application/json", `{"title":"Ann"}`, map[string]string{"Authorization": "Bearer " + shopKey, "Origin": "https://evil.example"}}, false, false, 403},
		{"get lead unknown", plain, req{"GET", "/v1/leads/ld_000000000000000000000000", "", "", bearer}, false, false, 404},
		{"get lead with its timeline", pubStatus(threeRuns()), req{"GET", "/v1/leads/ld_000000000000000000000001", "", "", bearer}, false, false, 200},
		{"get lead no key", plain, req{"GET", "/v1/leads/ld_000000000000000000000000", "", "", nil}, false, false, 401},
		{"batch", plain, req{"POST", "/v1/leads/batch", "application/json", `{"leads":[{"idempotency_key":"a","lead":{"title":"Ann"}},{"lead":{"email":"bad"}}]}`, bearer}, false, false, 200}, // formats are not validated
		{"batch valid", plain, req{"POST", "/v1/leads/batch", "application/json", `{"leads":[{"idempotency_key":"a","lead":{"title":"Ann"}}]}`, bearer}, false, false, 200},
		{"batch empty", plain, req{"POST", "/v1/leads/batch", "application/json", `{"leads":[]}`, bearer}, true, false, 400},
		{"batch redis down", pubErr(producer.ErrUnavailable), req{"POST", "/v1/leads/batch", "application/json", `{"leads":[{"lead":{"title":"Ann"}}]}`, bearer}, false, false, 503},
		{"batch rate limited", with(lim), req{"POST", "/v1/leads/batch", "application/json", `{"leads":[{"lead":{"title":"Ann"}}]}`, bearer}, false, true, 429},
		{"batch form", plain, req{"POST", "/v1/leads/batch", "text/plain", `x`, bearer}, true, false, 415},
		{"drop-in v1 GET", plain, req{"GET", "/developer/v1/leads?" + shop + "&action=add&title=Ann", "", "", nil}, false, false, 200},
		{"drop-in v1 wrong key", plain, req{"GET", "/developer/v1/leads?login=shop&apikey=wrong-wrong-wrong&action=add&title=Ann", "", "", nil}, false, false, 200},
		{"drop-in v1 list", plain, req{"GET", "/developer/v1/leads?" + shop + "&action=list", "", "", nil}, false, false, 200},
		{"drop-in v1 invalid", plain, req{"POST", "/developer/v1/leads", "application/x-www-form-urlencoded", shop + "&action=add&email=bad", nil}, false, false, 200},
		{"drop-in v1 not UTF-8, kept", plain, req{"GET", "/developer/v1/leads?" + shop + "&action=add&title=%C8%E2%E0%ED", "", "", nil}, false, false, 200},
		{"drop-in v1 JSON body", plain, req{"POST", "/developer/v1/leads", "application/json", `{"title":"Ann"}`, nil}, true, false, 200},
		{"drop-in v1 rate limited", with(lim), req{"GET", "/developer/v1/leads?" + shop + "&action=add&title=Ann", "", "", nil}, false, true, 200},
		{"drop-in v2 GET", plain, req{"GET", "/developer/v2/lead?" + shop + "&action=add&title=Ann", "", "", nil}, false, false, 200},
		{"drop-in v2 JSON", plain, req{"POST", "/developer/v2/lead", "application/json", `{"action":"add","title":"Ann"}`, map[string]string{"login": "shop", "apikey": shopKey}}, false, false, 200},
		{"drop-in v2 wrong key", plain, req{"POST", "/developer/v2/lead", "application/x-www-form-urlencoded", "login=shop&apikey=nope-nope-nope&action=add&title=Ann", nil}, false, false, 200},
		{"openapi", plain, req{"GET", "/openapi.json", "", "", nil}, false, false, 200},
		{"root", plain, req{"GET", "/", "", "", nil}, false, false, 200},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env(t)
			build := func() *http.Request {
				r := httptest.NewRequest(tc.req.method, tc.req.target, strings.NewReader(tc.req.body))
				if tc.req.body == "" {
					r = httptest.NewRequest(tc.req.method, tc.req.target, nil)
				}
				if tc.req.ct != "" {
					r.Header.Set("Content-Type", tc.req.ct)
				}
				for k, v := range tc.req.header {
					r.Header.Set(k, v)
				}
				return r
			}
			r := build()
			route, params, err := router.FindRoute(r)
			if err != nil {
				t.Fatalf("%s %s is not in api/openapi.json: %v", tc.req.method, tc.req.target, err)
			}
			covered[route.Operation.OperationID] = true
			in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if err := openapi3filter.ValidateRequest(t.Context(), in); (err != nil) != tc.invalid {
				t.Errorf("request validation: %v (the case says invalid=%v)", err, tc.invalid)
			}
			rec := e.do(t, build())
			if tc.twice {
				rec = e.do(t, build())
			}
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %.300s", rec.Code, tc.status, rec.Body)
			}
			in.Request = build()
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
				Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
			if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
				t.Errorf("answer does not match api/openapi.json: %v\n%.300s", err, rec.Body)
			}
		})
	}
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !covered[op.OperationID] {
				missing = append(missing, method+" "+path)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("documented operations no case exercises: %v", missing)
	}
}

// TestOpenAPIServed: the site listener serves the document it is tested
// against, and GET / points to it.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rec := e.do(t, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), api.OpenAPI) {
		t.Errorf("GET /openapi.json: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	rec = e.do(t, httptest.NewRequest(http.MethodGet, "/", nil))
	if m := decodeBody(t, rec); rec.Code != http.StatusOK || m["openapi"] != "/openapi.json" || !strings.Contains(m["ops_ui"].(string), "LEADRELAY_OPS_ADDR") {
		t.Errorf("GET /: %d %v", rec.Code, m)
	}
	rec = e.do(t, httptest.NewRequest(http.MethodGet, "/nowhere", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "/openapi.json") {
		t.Errorf("GET /nowhere: %d %s", rec.Code, rec.Body)
	}
}

// TestRootNamesOpsUI: GET / names the operators' page where the ops
// listener is, not a default address (issue 19.5: it named 8081 while ops
// listened elsewhere).
func TestRootNamesOpsUI(t *testing.T) {
	t.Parallel()
	h := New(Options{OpsUI: "http://127.0.0.1:9191/"}, nil, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	m := decodeBody(t, rec)
	if ops, _ := m["ops_ui"].(string); rec.Code != http.StatusOK || !strings.HasPrefix(ops, "http://127.0.0.1:9191/ ") || strings.Contains(ops, "8081") {
		t.Errorf("GET /: %d %v", rec.Code, m)
	}
}
