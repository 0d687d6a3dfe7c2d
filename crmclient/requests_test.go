package crmclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"leadrelay/lead"
)

// phpDecode decodes a form value the way v1 reads login, apikey and user:
// PHP's own form decoding, then urldecode() again.
func phpDecode(t *testing.T, form url.Values, key string) string {
	t.Helper()
	v, err := url.QueryUnescape(form.Get(key))
	if err != nil {
		t.Fatalf("urldecode(%s): %v", key, err)
	}
	return v
}

func TestV1RequestDoubleEncodes(t *testing.T) {
	t.Parallel()
	srv := newStub(t, answerWith(200, nil, golden(t, "v1_add_ok.json")))
	c := newTestClient(t, srv.URL+"/crm/") // a base path and a trailing slash
	l := Lead{Lead: lead.Lead{
		Title: "Andreev+Vlad", Email: "v@god.ry", Phone: "+79001234567", Company: "Sales'Man",
		Description: "100% sure", Path: "Test Path", User: "boss+1@example.com", UTMSource: "google",
	}, UIDs: map[string]string{"leadrelay": "x"}}
	if _, err := c.Add(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	r := srv.requests()[0]
	if r.method != http.MethodPost || r.path != "/crm/developer/v1/leads" || r.rawQuery != "" {
		t.Fatalf("got %s %s?%s, want POST /crm/developer/v1/leads without query", r.method, r.path, r.rawQuery)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", ct)
	}
	form, err := url.ParseQuery(string(r.body))
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, phpDecode(t, form, "login"), testLogin)
	wantEqual(t, phpDecode(t, form, "apikey"), testKey)
	wantEqual(t, phpDecode(t, form, "user"), "boss+1@example.com")
	// Other fields are decoded once only.
	wantEqual(t, form.Get("action"), "add")
	wantEqual(t, form.Get("title"), "Andreev+Vlad")
	wantEqual(t, form.Get("phone"), "+79001234567")
	wantEqual(t, form.Get("description"), "100% sure")
	wantEqual(t, form.Get("company"), "SalesMan") // ' breaks v1's request log
	wantEqual(t, form.Get("path"), "Test Path")
	wantEqual(t, form.Get("utm_source"), "google")
	for _, k := range []string{"id", "clientpath", "uids[leadrelay]", "site", "partner"} {
		if form.Has(k) {
			t.Errorf("v1 add sent %s=%q", k, form.Get(k))
		}
	}
}

func TestV2FormRequest(t *testing.T) {
	t.Parallel()
	srv := newStub(t, answerWith(200, nil, golden(t, "v2_add_ok.json")))
	c := newTestClient(t, srv.URL, WithAPIVersion(V2), WithUserAgent("relay-test/1"))
	l := Lead{Lead: lead.Lead{Title: "it's", Path: "Test Path", User: "a+b"}, UIDs: map[string]string{"leadrelay": "lr 1", "crm": "9"}}
	if _, err := c.Add(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	r := srv.requests()[0]
	wantEqual(t, r.path, "/developer/v2/lead")
	wantEqual(t, r.rawQuery, "")
	wantEqual(t, r.header.Get("User-Agent"), "relay-test/1")
	form, err := url.ParseQuery(string(r.body))
	if err != nil {
		t.Fatal(err)
	}
	// v2 decodes once.
	wantEqual(t, form.Get("login"), testLogin)
	wantEqual(t, form.Get("apikey"), testKey)
	wantEqual(t, form.Get("user"), "a+b")
	wantEqual(t, form.Get("title"), "it's")
	wantEqual(t, form.Get("clientpath"), "Test Path")
	wantEqual(t, form.Get("uids[leadrelay]"), "lr 1")
	wantEqual(t, form.Get("uids[crm]"), "9")
	for _, k := range []string{"id", "path"} {
		if form.Has(k) {
			t.Errorf("v2 add sent %s", k)
		}
	}
}

func TestV2JSONRequest(t *testing.T) {
	t.Parallel()
	srv := newStub(t, answerWith(200, map[string]string{"Content-Type": "application/json; charset=utf-8"}, golden(t, "v2_add_ok.json")))
	c := newTestClient(t, srv.URL, WithAPIVersion(V2), WithJSON(true))
	id, err := c.Add(t.Context(), Lead{Lead: lead.Lead{Title: `it's "quoted"`, Path: "7"}, UIDs: map[string]string{"leadrelay": "lr-1"}})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, id, int64(940))
	r := srv.requests()[0]
	wantEqual(t, r.header.Get("Content-Type"), "application/json") // exactly: no charset
	wantEqual(t, r.header.Get("login"), testLogin)
	wantEqual(t, r.header.Get("apikey"), testKey)
	wantEqual(t, r.rawQuery, "")
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	wantEqual(t, body["action"], any("add"))
	wantEqual(t, body["title"], any(`it's "quoted"`))
	wantEqual(t, body["clientpath"], any("7"))
	uids, ok := body["uids"].(map[string]any)
	if !ok || uids["leadrelay"] != "lr-1" {
		t.Errorf("uids = %#v, want object {leadrelay: lr-1}", body["uids"])
	}
	for _, k := range []string{"id", "path", "apikey", "login"} {
		if _, ok := body[k]; ok {
			t.Errorf("JSON body has %q", k)
		}
	}
}

func TestListRequest(t *testing.T) {
	t.Parallel()
	srv := newStub(t, answerWith(200, nil, golden(t, "v2_list_empty.json")))
	c := newTestClient(t, srv.URL, WithAPIVersion(V2))
	msk := time.FixedZone("MSK", 3*3600)
	_, err := c.List(t.Context(), ListOptions{
		Page: 3, Order: "datum_do", First: "old",
		DateStart: time.Date(2025, 1, 31, 23, 0, 0, 0, msk), DateEnd: time.Date(2025, 2, 2, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	form, _ := url.ParseQuery(string(srv.requests()[0].body))
	want := map[string]string{"action": "list", "offset": "3", "order": "datum_do", "first": "old", "dateStart": "2025-01-31", "dateEnd": "2025-02-02"}
	for k, v := range want {
		wantEqual(t, form.Get(k), v)
	}
}

func TestListOptionsInvalid(t *testing.T) {
	t.Parallel()
	srv := newStub(t, answerWith(200, nil, golden(t, "v2_list.json")))
	c := newTestClient(t, srv.URL, WithAPIVersion(V2))
	for _, o := range []ListOptions{{Page: -1}, {First: "newest"}, {Order: "datum; DROP TABLE leads"}} {
		if _, err := c.List(t.Context(), o); err == nil {
			t.Errorf("List(%+v) succeeded, want error", o)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("invalid options reached the server %d times", n)
	}
}

func TestStatBetween(t *testing.T) {
	t.Parallel()
	srv := newStub(t, answerWith(200, nil, golden(t, "v2_stat.json")))
	from, to := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC)

	v1 := newTestClient(t, srv.URL)
	if _, err := v1.StatBetween(t.Context(), from, to); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("v1 StatBetween: got %v, want ErrUnsupported", err)
	}
	v2 := newTestClient(t, srv.URL, WithAPIVersion(V2))
	if _, err := v2.StatBetween(t.Context(), to, from); err == nil {
		t.Error("reversed range accepted")
	}
	st, err := v2.StatBetween(t.Context(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, len(st), 2)
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	form, _ := url.ParseQuery(string(reqs[0].body))
	wantEqual(t, form.Get("action"), "stat")
	wantEqual(t, form.Get("dateStart"), "2025-03-01")
	wantEqual(t, form.Get("dateEnd"), "2025-03-31")
}

func TestInfoRequest(t *testing.T) {
	t.Parallel()
	srv := newStub(t, answerWith(200, nil, golden(t, "v2_info.json")))
	c := newTestClient(t, srv.URL, WithAPIVersion(V2), WithJSON(true))
	if _, err := c.Info(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(srv.requests()[0].body, &body); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, body["action"], any("info"))
	wantEqual(t, body["id"], any("4"))
	if _, err := c.Info(t.Context(), 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Info(0) = %v, want ErrNotFound", err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base, login, key string
		opts                   []Option
		wantErr                string // substring; "" means success
		wantEndpoint           string
	}{
		{name: "v1 default", base: "https://crm.example.com", login: "a", key: "k", wantEndpoint: "https://crm.example.com/developer/v1/leads"},
		{name: "v2 with path", base: "https://example.com/crm/", login: "a", key: "k", opts: []Option{WithAPIVersion(V2)}, wantEndpoint: "https://example.com/crm/developer/v2/lead"},
		{name: "json v2", base: "http://crm", login: "a", key: "k", opts: []Option{WithAPIVersion(V2), WithJSON(true)}, wantEndpoint: "http://crm/developer/v2/lead"},
		{name: "bad url", base: "://nope", login: "a", key: "k", wantErr: "bad CRM URL"},
		{name: "no scheme", base: "crm.example.com", login: "a", key: "k", wantErr: "scheme"},
		{name: "ftp", base: "ftp://crm.example.com", login: "a", key: "k", wantErr: "scheme"},
		{name: "no host", base: "https://", login: "a", key: "k", wantErr: "no host"},
		{name: "query", base: "https://crm/?apikey=k", login: "a", key: "k", wantErr: "query"},
		{name: "empty login", base: "https://crm", login: " ", key: "k", wantErr: "empty login"},
		{name: "empty key", base: "https://crm", login: "a", key: "", wantErr: "empty API key"},
		{name: "unknown version", base: "https://crm", login: "a", key: "k", opts: []Option{WithAPIVersion("v3")}, wantErr: "unknown API version"},
		{name: "zero timeout", base: "https://crm", login: "a", key: "k", opts: []Option{WithTimeout(0)}, wantErr: "timeout must be positive"},
		{name: "negative timeout", base: "https://crm", login: "a", key: "k", opts: []Option{WithTimeout(-time.Second)}, wantErr: "timeout must be positive"},
		{name: "nil http client", base: "https://crm", login: "a", key: "k", opts: []Option{WithHTTPClient(nil)}, wantErr: "nil *http.Client"},
		{name: "empty user agent", base: "https://crm", login: "a", key: "k", opts: []Option{WithUserAgent("")}, wantErr: "user agent"},
		{name: "user agent newline", base: "https://crm", login: "a", key: "k", opts: []Option{WithUserAgent("a\nb")}, wantErr: "user agent"},
		{name: "zero idle connections", base: "https://crm", login: "a", key: "k", opts: []Option{WithMaxIdleConns(0)}, wantErr: "idle connections must be positive"},
		{name: "nil location", base: "https://crm", login: "a", key: "k", opts: []Option{WithLocation(nil)}, wantErr: "Location"},
		{name: "json on v1", base: "https://crm", login: "a", key: "k", opts: []Option{WithJSON(true)}, wantErr: "WithJSON needs"},
		{name: "json key newline", base: "https://crm", login: "a", key: "k\r\nx", opts: []Option{WithAPIVersion(V2), WithJSON(true)}, wantErr: "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.base, tt.login, tt.key, tt.opts...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: got %v, want error containing %q", err, tt.wantErr)
				}
				if tt.key != "" && strings.Contains(err.Error(), tt.key) && len(tt.key) > 1 {
					t.Errorf("error holds the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, c.endpoint, tt.wantEndpoint)
		})
	}
}

func TestWithHTTPClientNotMutated(t *testing.T) {
	t.Parallel()
	hc := &http.Client{}
	c := newTestClient(t, "https://crm", WithHTTPClient(hc), WithTimeout(time.Second))
	if hc.CheckRedirect != nil {
		t.Error("caller's http.Client was changed")
	}
	if c.hc == hc || c.hc.CheckRedirect == nil {
		t.Error("client does not use a redirect-refusing copy")
	}
	wantEqual(t, c.Version(), V1)
}

// TestAddSendsEveryField: Add sends each field of the lead's table under
// the parameter the table names for the client's API version, as Sent
// has it.
func TestAddSendsEveryField(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		version APIVersion
		answer  string
		param   func(lead.Field) string
	}{
		{V1, "v1_add_ok.json", func(f lead.Field) string { return f.CRM.V1 }},
		{V2, "v2_add_ok.json", func(f lead.Field) string { return f.CRM.V2 }},
	} {
		t.Run(string(v.version), func(t *testing.T) {
			t.Parallel()
			srv := newStub(t, answerWith(200, nil, golden(t, v.answer)))
			c := newTestClient(t, srv.URL, WithAPIVersion(v.version))
			var l Lead
			for i, f := range lead.Fields() {
				*f.Of(&l.Lead) = fmt.Sprintf("v%d", i)
			}
			if _, err := c.Add(t.Context(), l); err != nil {
				t.Fatal(err)
			}
			form, err := url.ParseQuery(string(srv.requests()[0].body))
			if err != nil {
				t.Fatal(err)
			}
			sent := c.Sent(l) // v2 adds the ip line to the description
			for _, f := range lead.Fields() {
				if got, want := form.Get(v.param(f)), *f.Of(&sent.Lead); got != want {
					t.Errorf("%s sent as %s=%q, want %q", f.Name, v.param(f), got, want)
				}
			}
		})
	}
}
