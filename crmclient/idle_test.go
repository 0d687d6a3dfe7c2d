package crmclient

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"leadrelay/lead"
)

// TestMaxIdleConnsReusesConnections: after n requests at once, a client
// keeping n idle connections serves the next n at once without dialling
// again, while the default keeps DefaultMaxIdleConns and dials the rest.
func TestMaxIdleConnsReusesConnections(t *testing.T) {
	t.Parallel()
	const n = DefaultMaxIdleConns + 8
	for _, tc := range []struct {
		name      string
		opts      []Option
		wantDials int // in the second round
	}{
		{"default", nil, n - DefaultMaxIdleConns},
		{"WithMaxIdleConns(n)", []Option{WithMaxIdleConns(n)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var dials atomic.Int64
			var arrived sync.WaitGroup
			var mu sync.Mutex
			release := make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived.Done()
				mu.Lock()
				ch := release
				mu.Unlock()
				select { // hold every request until all n are in, so n connections are open
				case <-ch:
				case <-time.After(10 * time.Second):
				}
				_, _ = w.Write([]byte(`{"result":"Success","id":1}`))
			}))
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					dials.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			c := newTestClient(t, srv.URL, append([]Option{WithAPIVersion(V2)}, tc.opts...)...)
			round := func() {
				mu.Lock()
				release = make(chan struct{})
				mu.Unlock()
				arrived.Add(n)
				var done sync.WaitGroup
				for range n {
					done.Add(1)
					go func() {
						defer done.Done()
						if _, err := c.Add(t.Context(), Lead{Lead: lead.Lead{Title: "Ann"}}); err != nil {
							t.Error(err)
						}
					}()
				}
				all := make(chan struct{})
				go func() { arrived.Wait(); close(all) }()
				select {
				case <-all:
				case <-time.After(10 * time.Second):
					t.Fatal("the requests did not all reach the server")
				}
				mu.Lock()
				close(release)
				mu.Unlock()
				done.Wait()
			}
			round()
			first := dials.Load()
			round()
			if got := dials.Load() - first; got != int64(tc.wantDials) {
				t.Errorf("second round dialled %d connections, want %d (first round: %d)", got, tc.wantDials, first)
			}
		})
	}
}
