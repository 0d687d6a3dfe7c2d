package crmsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func startServer(t *testing.T, sim *Sim) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(sim)
	if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Close()
		srv.Wait()
	})
	return srv
}

// waitFor polls cond every 10ms for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialErr(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func TestServerOutageRefuse(t *testing.T) {
	t.Parallel()
	sim, err := New(Config{APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, sim)
	addr := srv.Addr()
	if a := postForm(t, srv.URL(), PathV2, auth("action", "stat")); a.status != 200 {
		t.Fatalf("before: HTTP %d", a.status)
	}
	sim.SetFaults(Faults{Outage: &Outage{Mode: OutageRefuse, For: Duration(400 * time.Millisecond)}})
	waitFor(t, "dial refused", func() bool { return errors.Is(dialErr(addr), syscall.ECONNREFUSED) })
	waitFor(t, "listening again", func() bool { return dialErr(addr) == nil })
	if srv.Addr() != addr {
		t.Fatalf("address changed: %s -> %s", addr, srv.Addr())
	}
	if a := postForm(t, srv.URL(), PathV2, auth("action", "stat")); a.status != 200 {
		t.Fatalf("after: HTTP %d", a.status)
	}
	// Clearing an open-ended outage by hand reopens too.
	sim.SetFaults(Faults{Outage: &Outage{Mode: OutageRefuse}})
	waitFor(t, "dial refused", func() bool { return errors.Is(dialErr(addr), syscall.ECONNREFUSED) })
	sim.SetFaults(Faults{})
	waitFor(t, "listening again", func() bool { return dialErr(addr) == nil })
}

func TestServerStopsOnContext(t *testing.T) {
	t.Parallel()
	sim, _ := New(Config{APIKey: testKey})
	ctx, cancel := context.WithCancel(t.Context())
	srv := NewServer(sim)
	if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cancel()
	srv.Wait()
	if dialErr(srv.Addr()) == nil {
		t.Fatal("still accepting after ctx done")
	}
	if err := srv.Start(t.Context(), "127.0.0.1:0"); err == nil {
		t.Fatal("restart of a closed Server accepted")
	}
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	for _, delay := range []time.Duration{0, -1} {
		t.Run("delay="+delay.String(), func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "leads.json")
			cfg := Config{APIKey: testKey, DataFile: file, PersistDelay: delay}
			sim, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := startServer(t, sim)
			for range 3 {
				addV2(t, srv.URL(), "title", "keep", "clientpath", "Web", "uids[k]", "v")
			}
			sim.SetStatus(2, StatusProcessed, 0)
			if err := sim.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(file); err != nil {
				t.Fatal(err)
			}
			again, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			leads := again.Leads()
			if len(leads) != 3 || leads[1].Status != StatusProcessed || leads[2].UIDs["k"] != "v" || leads[0].ClientPathID != 1 {
				t.Fatalf("reloaded %+v", leads)
			}
			srv2 := startServer(t, again)
			if id := addV2(t, srv2.URL(), "title", "next", "clientpath", "Web"); id != 4 {
				t.Fatalf("next id %d, want 4", id)
			}
			if l, _ := again.Lead(4); l.ClientPathID != 1 {
				t.Fatalf("source id %d, want the reloaded 1", l.ClientPathID)
			}
			again.Reset()
			again.Close()
			third, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(third.Leads()); n != 0 {
				t.Fatalf("after Reset %d leads persisted", n)
			}
			matches, _ := filepath.Glob(file + ".tmp-*")
			if len(matches) != 0 {
				t.Fatalf("temp files left: %v", matches)
			}
		})
	}
	t.Run("corrupt file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(file, []byte("{"), 0o600)
		if _, err := New(Config{APIKey: "k", DataFile: file}); err == nil {
			t.Fatal("corrupt DataFile accepted")
		}
	})
}

// TestKeyNeverLogged sends the key every way a client can and checks no log
// entry carries it.
func TestKeyNeverLogged(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	sim, ts := newTestSim(t, Config{Logger: zap.New(core), Faults: Faults{RejectMarker: testKey}})
	getRaw(t, ts.URL, PathV1, seedQuery)
	postForm(t, ts.URL, PathV1, auth("action", "add", "title", testKey))
	postForm(t, ts.URL, PathV2, auth("action", testKey))
	postForm(t, ts.URL, PathV2, auth("action", "stat", "login", testKey))
	postJSON(t, ts.URL, "application/json", map[string]any{"action": "stat"}, map[string]string{"login": "x" + testKey, "apikey": testKey}, "")
	sim.SetFaults(Faults{RejectMarker: testKey})
	sim.SetFaults(Faults{})
	if logs.Len() < 5 {
		t.Fatalf("only %d log entries", logs.Len())
	}
	var buf bytes.Buffer
	for _, e := range logs.All() {
		fmt.Fprintf(&buf, "%s %v\n", e.Message, e.ContextMap())
	}
	if strings.Contains(buf.String(), testKey) {
		t.Fatalf("the API key was logged:\n%s", buf.String())
	}
	var found bool
	for _, e := range logs.FilterMessage("crmsim request").All() {
		m := e.ContextMap()
		if m["action"] == "add" && m["login"] == "vladislav@isaler.ru" && m["status"] == int64(200) && m["method"] == "GET" {
			found = true
		}
	}
	if !found {
		t.Errorf("no request entry for the seed add:\n%s", buf.String())
	}
}
