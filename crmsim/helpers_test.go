package crmsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const testKey = "aMgiCQyj8bCToNc47BZZYrRICoWSIl"

func testUsers() []User {
	return append(DefaultUsers(), User{Login: "vladislav@isaler.ru", Name: "Владислав", Active: true})
}

// newTestSim starts a Sim behind httptest; cfg gets the test key and users
// unless set.
func newTestSim(t *testing.T, cfg Config) (*Sim, *httptest.Server) {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.Users == nil {
		cfg.Users = testUsers()
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() {
		ts.Close()
		sim.Close()
	})
	return sim, ts
}

type answer struct {
	status int
	ctype  string
	body   string
	header http.Header
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, a.body)
	}
	return m
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: string(b), header: resp.Header}
}

// postForm POSTs v urlencoded to base+path.
func postForm(t *testing.T, base, path string, v url.Values) answer {
	t.Helper()
	return postRaw(t, base, path, v.Encode())
}

// postRaw POSTs an already encoded form body.
func postRaw(t *testing.T, base, path, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// getRaw GETs base+path?query with the query exactly as given.
func getRaw(t *testing.T, base, path, query string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// postJSON POSTs body with the given Content-Type and headers.
func postJSON(t *testing.T, base, ctype string, body any, headers map[string]string, query string) answer {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	u := base + PathV2
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

// auth returns login+apikey form values for the admin user plus kv pairs.
func auth(kv ...string) url.Values {
	v := url.Values{"login": {"admin@example.com"}, "apikey": {testKey}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// addV2 adds a lead through v2 and returns its id.
func addV2(t *testing.T, base string, kv ...string) int64 {
	t.Helper()
	a := postForm(t, base, PathV2, auth(append([]string{"action", "add"}, kv...)...))
	var r struct {
		Result string `json:"result"`
		ID     int64  `json:"id"`
	}
	if err := json.Unmarshal([]byte(a.body), &r); err != nil || r.Result != "Success" {
		t.Fatalf("v2 add: %d %s", a.status, a.body)
	}
	return r.ID
}
