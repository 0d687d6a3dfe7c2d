package intake

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// apiStatus is the status an answer means: the HTTP status, or on a
// drop-in answer (HTTP 200 always) the one in HeaderStatus; -1 for a
// HeaderStatus on an answer that is not HTTP 200.
func apiStatus(rec *httptest.ResponseRecorder) int {
	s := rec.Header().Get(HeaderStatus)
	if s == "" {
		return rec.Code
	}
	if rec.Code != http.StatusOK {
		return -1
	}
	n, _ := strconv.Atoi(s)
	return n
}

func v2Get(query string) *http.Request {
	return httptest.NewRequest(http.MethodGet, "/developer/v2/lead?"+query, nil)
}

func v2JSON(body string, header map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/developer/v2/lead", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

// TestDropInAlways200: every drop-in answer is HTTP 200 with the error in
// the CRM's body, as the CRM answers; the API status is in HeaderStatus and
// Retry-After is kept.
func TestDropInAlways200(t *testing.T) {
	t.Parallel()
	shop := "login=shop&apikey=" + url.QueryEscape(shopKey) + "&action=add"
	tests := []struct {
		name       string
		env        func(t *testing.T) *env
		req        func() *http.Request
		status     string // HeaderStatus, "" for none
		retryAfter bool
		inBody     string
	}{
		{"too large", func(t *testing.T) *env { return newEnv(t, nil) },
			func() *http.Request { return dropPost(shop + "&title=" + strings.Repeat("a", 70<<10)) }, "413", false, "64 KiB"},
		{"rate limit", func(t *testing.T) *env {
			return newEnvWith(t, nil, func(e *env, o *Options) { o.Limiter = NewRedisLimiter(e.rdb, 0.001, 0) })
		}, func() *http.Request { return dropGet(shop + "&title=Ann") }, "", false, "Success"},
		{"method", func(t *testing.T) *env { return newEnv(t, nil) },
			func() *http.Request { return httptest.NewRequest(http.MethodDelete, "/developer/v1/leads", nil) }, "405", false, "method not allowed"},
		{"JSON body on v1", func(t *testing.T) *env { return newEnv(t, nil) },
			func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/developer/v1/leads", strings.NewReader(`{"login":"shop","apikey":"`+shopKey+`","action":"add","title":"Ann"}`))
				r.Header.Set("Content-Type", "application/json")
				return r
			}, "400", false, "the body is JSON, but this endpoint reads form fields"},
		{"JSON body without a type", func(t *testing.T) *env { return newEnv(t, nil) },
			func() *http.Request {
				return httptest.NewRequest(http.MethodPost, "/developer/v1/leads?"+shop, strings.NewReader(`{"title":"Ann"}`))
			}, "400", false, "the body is JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := tc.env(t)
			rec := e.do(t, tc.req())
			if tc.name == "rate limit" { // the first passes on the burst; the second is over
				rec = e.do(t, tc.req())
				tc.status, tc.retryAfter, tc.inBody = "429", true, "too many requests"
			}
			if rec.Code != http.StatusOK || rec.Header().Get(HeaderStatus) != tc.status {
				t.Fatalf("HTTP %d %s %q, want 200 and %s %q: %s", rec.Code, HeaderStatus, rec.Header().Get(HeaderStatus), HeaderStatus, tc.status, rec.Body)
			}
			if got := rec.Header().Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
			}
			if m := decodeBody(t, rec); m["Error"] == nil || !strings.Contains(rec.Body.String(), tc.inBody) {
				t.Errorf("answer = %s, want the add-failure shape with %q", rec.Body, tc.inBody)
			}
		})
	}
}

// TestDropInV2 speaks SalesMan's v2 lead API: form and JSON requests, the
// v2 success and error shapes, clientpath as the source.
func TestDropInV2(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	shop := "login=shop&apikey=" + url.QueryEscape(shopKey)
	tests := []struct {
		name string
		req  *http.Request
		want string // exact body, or "success"
		path string // the enqueued lead's path, on success
	}{
		{"GET add", v2Get(shop + "&action=add&title=Ann&clientpath=Landing"), "success", "Landing"},
		{"JSON body", v2JSON(`{"login":"shop","apikey":"`+shopKey+`","action":"add","title":"Bob","email":"bob@example.com","uids":{"x":"1"}}`, nil), "success", ""},
		{"JSON, credentials in headers", v2JSON(`{"action":"add","title":"Cy","phone":79001234567}`, map[string]string{"login": "shop", "apikey": shopKey}), "success", ""},
		{"path wins over clientpath", v2Get(shop + "&action=add&title=Dee&clientpath=A&path=B"), "success", "B"},
		{"wrong key", v2Get("login=shop&apikey=wrong-wrong-wrong&action=add&title=Ann"), `{"result":"Error","error":{"code":401,"text":"Неизвестный пользователь"}}`, ""},
		{"list", v2Get(shop + "&action=list"), `{"result":"Error","error":{"code":402,"text":"Не известный метод"}}`, ""},
		{"invalid lead", v2Get(shop + "&action=add&email=not-mail"), `{"result":"Error","error":{"code":1,"text":"Ошибка добавления лида. email: not an e-mail address"}}`, ""},
		{"JSON not an object", v2JSON(`[1]`, nil), `{"result":"Error","error":{"code":1,"text":"Ошибка добавления лида. the body is not a JSON object"}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, tc.req)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
				t.Fatalf("%d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			got := rec.Body.String()
			if tc.want != "success" {
				if got != tc.want {
					t.Errorf("answer = %s\nwant     %s", got, tc.want)
				}
				return
			}
			m := decodeBody(t, rec)
			id, _ := m["id"].(string)
			if m["result"] != "Success" || !strings.HasPrefix(id, "ld_") {
				t.Fatalf("answer = %s, want the v2 success shape", got)
			}
			if p := e.payload(t, id); p.Site != "shop" || p.Lead.Path != tc.path {
				t.Errorf("enqueued %+v from %s; want path %q from shop", p.Lead, p.Site, tc.path)
			}
		})
	}
}
