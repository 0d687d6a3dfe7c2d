// Package crmsimtest starts the CRM simulator for other packages' tests:
// one call gives a Sim serving on a free loopback port through
// crmsim.Server, the server the relay's embedded mode and
// `go run ./tools/crmsim` use, closed when the test ends.
package crmsimtest

import (
	"context"
	"testing"

	"leadrelay/crmsim"
)

// Start makes a simulator from cfg, serves it on 127.0.0.1 at a free port
// and returns it with its base URL. A bad cfg or a failed listen fails t;
// the server closes at t's cleanup.
func Start(t testing.TB, cfg crmsim.Config) (*crmsim.Sim, string) {
	t.Helper()
	sim, err := crmsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := crmsim.NewServer(sim)
	if err := srv.Start(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return sim, srv.URL()
}
