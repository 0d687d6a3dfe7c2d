package crmsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/testclock"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults Faults
		path   string
		action string
		check  func(t *testing.T, a answer, stored int)
	}{
		{"error rate 500", Faults{ErrorRate: 1}, PathV2, "add", func(t *testing.T, a answer, stored int) {
			if a.status != 500 || a.body != "" || stored != 0 {
				t.Fatalf("HTTP %d body %q stored %d", a.status, a.body, stored)
			}
		}},
		{"error rate 503", Faults{ErrorRate: 1, ErrorStatus: 503}, PathV1, "add", func(t *testing.T, a answer, stored int) {
			if a.status != 503 || stored != 0 {
				t.Fatalf("HTTP %d stored %d", a.status, stored)
			}
		}},
		{"fatal", Faults{FatalRate: 1}, PathV2, "add", func(t *testing.T, a answer, stored int) {
			if a.status != 200 || !strings.HasPrefix(a.body, "<br />\n<b>Fatal error</b>:  Uncaught Error:") || stored != 0 {
				t.Fatalf("HTTP %d body %q stored %d", a.status, a.body, stored)
			}
			if a.ctype != "application/json; charset=utf-8" {
				t.Errorf("v2 fatal keeps the JSON label, got %q", a.ctype)
			}
		}},
		{"v1 shipped add", Faults{V1Shipped: true}, PathV1, "add", func(t *testing.T, a answer, stored int) {
			if a.status != 200 || !strings.Contains(a.body, "require_once(): Failed opening required") ||
				!strings.Contains(a.body, "<b>/var/www/salesman/developer/v1/leads.php</b> on line <b>12</b>") || stored != 0 {
				t.Fatalf("HTTP %d body %q stored %d", a.status, a.body, stored)
			}
		}},
		{"v1 shipped info", Faults{V1Shipped: true}, PathV1, "info", func(t *testing.T, a answer, stored int) {
			if !strings.Contains(a.body, "require_once()") {
				t.Fatalf("body %q", a.body)
			}
		}},
		{"v1 shipped leaves v2 add working", Faults{V1Shipped: true}, PathV2, "add", func(t *testing.T, a answer, stored int) {
			if !strings.HasPrefix(a.body, `{"result":"Success"`) || stored != 1 {
				t.Fatalf("body %q stored %d", a.body, stored)
			}
		}},
		{"auth fail v1", Faults{AuthFail: true}, PathV1, "add", func(t *testing.T, a answer, stored int) {
			if a.body != `{"result":"Error","error":{"code":"400","text":"Не верный API key"}}` || stored != 0 {
				t.Fatalf("body %q", a.body)
			}
		}},
		{"auth fail v2", Faults{AuthFail: true}, PathV2, "stat", func(t *testing.T, a answer, stored int) {
			if a.body != `{"result":"Error","error":{"code":401,"text":"Неизвестный пользователь"}}` {
				t.Fatalf("body %q", a.body)
			}
		}},
		{"reject marker", Faults{RejectMarker: "REJECT-ME"}, PathV1, "add", func(t *testing.T, a answer, stored int) {
			if !strings.HasPrefix(a.body, `{"error":{"code":"1"`) || stored != 0 {
				t.Fatalf("body %q stored %d", a.body, stored)
			}
		}},
		{"poison marker", Faults{PoisonMarker: "REJECT-ME"}, PathV2, "add", func(t *testing.T, a answer, stored int) {
			if a.status != 500 || a.body != "" || stored != 0 {
				t.Fatalf("HTTP %d body %q stored %d", a.status, a.body, stored)
			}
		}},
		{"poison marker spares other leads", Faults{PoisonMarker: "NOT-HERE"}, PathV1, "add", func(t *testing.T, a answer, stored int) {
			if a.status != 200 || stored != 1 {
				t.Fatalf("HTTP %d stored %d", a.status, stored)
			}
		}},
		{"rate limit", Faults{RateLimit429: 1}, PathV2, "add", func(t *testing.T, a answer, stored int) {
			if a.status != 429 || a.header.Get("Retry-After") != "1" || stored != 0 {
				t.Fatalf("HTTP %d Retry-After %q stored %d", a.status, a.header.Get("Retry-After"), stored)
			}
		}},
		{"outage 503", Faults{Outage: &Outage{For: Duration(time.Hour)}}, PathV1, "stat", func(t *testing.T, a answer, stored int) {
			if a.status != 503 || a.body != "" {
				t.Fatalf("HTTP %d body %q", a.status, a.body)
			}
		}},
		{"outage over", Faults{Outage: &Outage{Until: time.Now().Add(-time.Second)}}, PathV2, "add", func(t *testing.T, a answer, stored int) {
			if a.status != 200 || stored != 1 {
				t.Fatalf("HTTP %d stored %d", a.status, stored)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, ts := newTestSim(t, Config{Faults: tt.faults})
			a := postForm(t, ts.URL, tt.path, auth("action", tt.action, "title", "x REJECT-ME", "id", ""))
			tt.check(t, a, len(sim.Leads()))
		})
	}
}

func TestFaultV1ShippedList(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	sim, ts := newTestSim(t, Config{Clock: clock.Now, Location: time.UTC, Faults: Faults{V1Shipped: true}})
	addMany(t, sim, clock, 250)
	ids := listIDs(t, ts.URL, PathV1, "offset", "1", "dateStart", "2030-01-01", "order", "nope")
	if len(ids) != 200 || ids[0] != "250" || ids[199] != "51" {
		t.Fatalf("got %d ids from %v, want newest 200 (250..51)", len(ids), ids[:min(len(ids), 1)])
	}
}

func TestFaultAmbiguous(t *testing.T) {
	t.Parallel()
	for _, path := range []string{PathV1, PathV2} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			sim, ts := newTestSim(t, Config{Faults: Faults{AmbiguousRate: 1}})
			req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(auth("action", "add", "title", "amb").Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := ts.Client().Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("want a transport error, got HTTP %d", resp.StatusCode)
			}
			if n := len(sim.Leads()); n != 1 {
				t.Fatalf("stored %d leads, want 1", n)
			}
			// A non-add is never ambiguous.
			if a := postForm(t, ts.URL, path, auth("action", "stat")); a.status != 200 {
				t.Fatalf("stat HTTP %d", a.status)
			}
			if got := sim.Stats().Faults["ambiguous"]; got != 1 {
				t.Errorf("ambiguous count %d", got)
			}
		})
	}
}

func TestFaultAmbiguousWithoutHijacker(t *testing.T) {
	t.Parallel()
	sim, err := New(Config{APIKey: testKey, Faults: Faults{AmbiguousRate: 1}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, PathV2, strings.NewReader(auth("action", "add").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", r)
		}
		if len(sim.Leads()) != 1 {
			t.Fatal("lead not stored")
		}
	}()
	sim.ServeHTTP(httptest.NewRecorder(), req)
}

func TestFaultOutageRefuseHandler(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{Faults: Faults{Outage: &Outage{Mode: OutageRefuse}}})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+PathV2, strings.NewReader(auth("action", "add").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := ts.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("want the connection dropped, got HTTP %d", resp.StatusCode)
	}
	sim.SetFaults(Faults{})
	if a := postForm(t, ts.URL, PathV2, auth("action", "stat")); a.status != 200 {
		t.Fatalf("after the outage: HTTP %d", a.status)
	}
	if len(sim.Leads()) != 0 {
		t.Fatal("refused add was stored")
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	const lat = 80 * time.Millisecond
	_, ts := newTestSim(t, Config{Faults: Faults{Latency: Duration(lat)}})
	start := time.Now()
	a := postForm(t, ts.URL, PathV2, auth("action", "stat"))
	if a.status != 200 || time.Since(start) < lat {
		t.Fatalf("HTTP %d after %s, want 200 after at least %s", a.status, time.Since(start), lat)
	}
}

func TestFaultsDeterministicBySeed(t *testing.T) {
	t.Parallel()
	pattern := func(seed int64) string {
		sim, ts := newTestSim(t, Config{Seed: seed, Faults: Faults{ErrorRate: 0.5}})
		_ = sim
		var b strings.Builder
		for range 40 {
			if postForm(t, ts.URL, PathV2, auth("action", "stat")).status == 200 {
				b.WriteByte('.')
			} else {
				b.WriteByte('x')
			}
		}
		return b.String()
	}
	a, b := pattern(7), pattern(7)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Fatalf("rate 0.5 gave %s", a)
	}
}

func TestFaultsJSON(t *testing.T) {
	t.Parallel()
	in := `{"error_rate":0.5,"error_status":503,"latency":"250ms","outage":{"mode":"refuse","for":"2s"},"v1_shipped":true,"reject_marker":"X","rate_limit_429":0.1}`
	var f Faults
	if err := json.Unmarshal([]byte(in), &f); err != nil {
		t.Fatal(err)
	}
	if f.Latency != Duration(250*time.Millisecond) || f.Outage.For != Duration(2*time.Second) || f.ErrorStatus != 503 {
		t.Fatalf("decoded %+v", f)
	}
	var n Faults
	if err := json.Unmarshal([]byte(`{"latency":1000000}`), &n); err != nil || n.Latency != Duration(time.Millisecond) {
		t.Fatalf("nanoseconds: %v %v", n.Latency, err)
	}
	for _, bad := range []Faults{{ErrorRate: 2}, {ErrorStatus: 502}, {Outage: &Outage{Mode: "maybe"}}, {Latency: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	if err := json.Unmarshal([]byte(`{"latency":"soon"}`), &n); err == nil {
		t.Error("bad duration accepted")
	}
}
