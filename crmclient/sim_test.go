package crmclient_test

import (
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/crmsim/crmsimtest"
	"leadrelay/delivery"
	"leadrelay/lead"
)

const simKey = "sim+key%with/odd&chars"

type simCase struct {
	name string
	opts []crmclient.Option
}

var simVersions = []simCase{
	{"v1", []crmclient.Option{crmclient.WithAPIVersion(crmclient.V1)}},
	{"v2 form", []crmclient.Option{crmclient.WithAPIVersion(crmclient.V2)}},
	{"v2 json", []crmclient.Option{crmclient.WithAPIVersion(crmclient.V2), crmclient.WithJSON(true)}},
}

func newSim(t *testing.T, opts ...crmclient.Option) (*crmsim.Sim, *crmclient.Client) {
	t.Helper()
	sim, err := crmsim.New(crmsim.Config{APIKey: simKey, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	c, err := crmclient.New(ts.URL, "admin@example.com", simKey, append(opts, crmclient.WithTimeout(5*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// TestAgainstSimulator runs every action of the leads API through the client
// against the simulator, for v1 and both v2 modes.
func TestAgainstSimulator(t *testing.T) {
	t.Parallel()
	for _, v := range simVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			sim, c := newSim(t, v.opts...)
			ctx := t.Context()
			sent := crmclient.Lead{Lead: lead.Lead{
				Title: "Андреев Владислав", Email: "vladislav@god.ry", Phone: "+79001234567",
				Company: "SalesMan", Description: "The best crm practice", IP: "127.0.0.1",
				Country: "Russia", City: "Perm", Path: "Test Path", UTMSource: "google",
			}, UIDs: map[string]string{"leadrelay_key": "ld_abc"}}
			if c.Version() == crmclient.V1 {
				sent.UIDs = nil
			}
			id, err := c.Add(ctx, sent)
			if err != nil || id != 1 {
				t.Fatalf("Add = %d, %v", id, err)
			}
			info, err := c.Info(ctx, id)
			if err != nil {
				t.Fatalf("Info: %v", err)
			}
			if info.Email != sent.Email || info.Title != sent.Title || info.Phone != sent.Phone {
				t.Errorf("Info = %+v", info)
			}
			if c.Version() == crmclient.V2 && info.UIDs["leadrelay_key"] != "ld_abc" {
				t.Errorf("Info uids = %v", info.UIDs)
			}
			if _, err := c.Info(ctx, 999); !errors.Is(err, crmclient.ErrNotFound) {
				t.Errorf("Info(999) = %v, want ErrNotFound", err)
			}
			for i := 0; i < 449; i++ {
				if _, err := c.Add(ctx, crmclient.Lead{Lead: lead.Lead{Title: fmt.Sprintf("lead %d", i)}}); err != nil {
					t.Fatal(err)
				}
			}
			var pages []int
			for p := 0; p < 4; p++ {
				items, err := c.List(ctx, crmclient.ListOptions{Page: p})
				if err != nil {
					t.Fatalf("List page %d: %v", p, err)
				}
				pages = append(pages, len(items))
			}
			if fmt.Sprint(pages) != "[200 200 50 0]" {
				t.Errorf("page sizes = %v, want [200 200 50 0]", pages)
			}
			n := 0
			found := false
			today := time.Now()
			err = c.Walk(ctx, crmclient.ListOptions{First: "old", DateStart: today.AddDate(0, 0, -1), DateEnd: today.AddDate(0, 0, 1)},
				func(it crmclient.ListItem) bool {
					n++
					if it.ID == 1 && it.Email == sent.Email && (c.Version() == crmclient.V1 || it.UIDs["leadrelay_key"] == "ld_abc") {
						found = true
					}
					return true
				})
			if err != nil || n != 450 || !found {
				t.Errorf("Walk = %d items, found first %v, err %v", n, found, err)
			}
			stats, err := c.Stat(ctx)
			if err != nil || len(stats) != len(sim.Users()) {
				t.Errorf("Stat = %+v, %v", stats, err)
			}
			if got := len(sim.Leads()); got != 450 {
				t.Errorf("simulator holds %d leads, want 450", got)
			}
		})
	}
}

// TestSimulatorFaultsClassify checks that every fault the simulator injects
// reaches the caller as the right class.
func TestSimulatorFaultsClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults crmsim.Faults
		want   crmclient.Class
		stored bool
	}{
		{"http 500", crmsim.Faults{ErrorRate: 1}, crmclient.ClassAnswered, false},
		{"http 503", crmsim.Faults{ErrorRate: 1, ErrorStatus: 503}, crmclient.ClassTransient, false},
		{"outage 503", crmsim.Faults{Outage: &crmsim.Outage{Mode: crmsim.OutageHTTP503, For: crmsim.Duration(time.Minute)}}, crmclient.ClassTransient, false},
		{"429", crmsim.Faults{RateLimit429: 1}, crmclient.ClassRateLimited, false},
		{"ambiguous", crmsim.Faults{AmbiguousRate: 1}, crmclient.ClassAmbiguous, true},
		{"php fatal on add", crmsim.Faults{FatalRate: 1}, crmclient.ClassAnswered, false},
		{"wrong key", crmsim.Faults{AuthFail: true}, crmclient.ClassConfig, false},
		{"rejected lead", crmsim.Faults{RejectMarker: "#fail"}, crmclient.ClassPermanent, false},
	}
	for _, v := range simVersions {
		for _, tc := range tests {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				sim, c := newSim(t, v.opts...)
				sim.SetFaults(tc.faults)
				_, err := c.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "x #fail"}})
				if got := crmclient.Classify(err); got != tc.want {
					t.Fatalf("Classify(%v) = %v, want %v", err, got, tc.want)
				}
				if strings.Contains(err.Error(), simKey) {
					t.Errorf("error leaks the key: %v", err)
				}
				if stored := len(sim.Leads()) > 0; stored != tc.stored {
					t.Errorf("stored = %v, want %v", stored, tc.stored)
				}
				if tc.name == "429" {
					if d, ok := crmclient.RetryAfter(err); !ok || d != time.Second {
						t.Errorf("RetryAfter = %v, %v", d, ok)
					}
				}
			})
		}
	}
	t.Run("v1 as shipped", func(t *testing.T) {
		t.Parallel()
		sim, c := newSim(t)
		sim.SetFaults(crmsim.Faults{V1Shipped: true})
		_, err := c.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "x"}})
		if d := crmclient.Diagnose(err); d.Class != crmclient.ClassConfig || d.Reason.Code != delivery.ConfigV1Broken {
			t.Fatalf("err = %v, diagnosis %+v", err, d)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		sim, base := crmsimtest.Start(t, crmsim.Config{APIKey: simKey})
		c, err := crmclient.New(base, "admin@example.com", simKey)
		if err != nil {
			t.Fatal(err)
		}
		sim.SetFaults(crmsim.Faults{Outage: &crmsim.Outage{Mode: crmsim.OutageRefuse, For: crmsim.Duration(300 * time.Millisecond)}})
		deadline := time.Now().Add(2 * time.Second)
		for { // the listener closes asynchronously
			conn, derr := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if derr != nil {
				break
			}
			conn.Close()
			if time.Now().After(deadline) {
				t.Fatal("listener still accepting during the outage")
			}
			time.Sleep(5 * time.Millisecond)
		}
		_, err = c.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "x"}})
		if crmclient.Classify(err) != crmclient.ClassTransient {
			t.Fatalf("during outage: %v (%v)", err, crmclient.Classify(err))
		}
		for time.Now().Before(deadline) {
			if _, err = c.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "x"}}); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("still failing after the outage: %v", err)
	})
}
