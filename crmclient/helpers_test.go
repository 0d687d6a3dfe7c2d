package crmclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

const (
	testLogin = "robot@example.com"
	// testKey has the characters v1's double decoding mangles.
	testKey = "k+y%2Fs3cr3t&=/ ü"
)

func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorded is one request as the test server saw it.
type recorded struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

// stub is an httptest server that records requests and answers them with
// a fixed response.
type stub struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newStub(t testing.TB, h func(w http.ResponseWriter, r *http.Request, body []byte)) *stub {
	t.Helper()
	s := &stub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		s.mu.Unlock()
		h(w, r, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// answerWith returns a handler writing status, headers and body.
func answerWith(status int, header map[string]string, body []byte) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func (s *stub) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

func newTestClient(t testing.TB, base string, opts ...Option) *Client {
	t.Helper()
	c, err := New(base, testLogin, testKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
