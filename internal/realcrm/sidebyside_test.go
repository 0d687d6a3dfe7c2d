package realcrm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadrelay/crmsim"
)

// TestSimulatorMatchesRealCRM sends the same requests to the real CRM and
// to the simulator in its real-CRM modes (fatal_style crm, v1_shipped) and
// compares what a client can tell apart: the HTTP status, whether the body
// is empty, JSON or a PHP page, and whether v1 list honours its offset.
func TestSimulatorMatchesRealCRM(t *testing.T) {
	s := realCRM(t)
	sim, err := crmsim.New(crmsim.Config{APIKey: s.apikey, Users: []crmsim.User{{Login: s.login, Name: "Admin", Active: true, Coordinator: true}},
		Faults: crmsim.Faults{FatalStyle: crmsim.FatalCRM, V1Shipped: true}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { ts.Close(); sim.Close() })

	// Both need more than a page of leads for the offset probe.
	run := "sbs" + time.Now().Format("150405")
	for _, base := range []string{ts.URL, s.url} {
		for i := listCount(t, base, s); i <= 200; i++ {
			post(t, base, crmsim.PathV2, s, "action", "add", "title", run, "email", run+"@sbs.test", "description", "side by side "+strconv.Itoa(i))
		}
	}

	tests := []struct {
		name string
		path string
		kv   []string
	}{
		{"v1 add", crmsim.PathV1, []string{"action", "add", "title", run, "email", run + "@sbs.test"}},
		{"v1 info", crmsim.PathV1, []string{"action", "info", "id", "1"}},
		{"v1 stat", crmsim.PathV1, []string{"action", "stat"}},
		{"v1 list", crmsim.PathV1, []string{"action", "list"}},
		{"v2 add", crmsim.PathV2, []string{"action", "add", "title", run, "email", run + "@sbs.test", "uids[leadrelay_key]", run}},
		{"v2 stat", crmsim.PathV2, []string{"action", "stat"}},
		{"v2 unknown order", crmsim.PathV2, []string{"action", "list", "order", "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			real := post(t, s.url, tt.path, s, tt.kv...)
			simA := post(t, ts.URL, tt.path, s, tt.kv...)
			t.Logf("real: HTTP %d %s; simulator: HTTP %d %s", real.status, real.shape(), simA.status, simA.shape())
			if real.status != simA.status || real.shape() != simA.shape() {
				t.Errorf("the simulator answers HTTP %d %s, the real CRM HTTP %d %s", simA.status, simA.shape(), real.status, real.shape())
			}
		})
	}
	t.Run("v1 list ignores offset", func(t *testing.T) {
		for _, base := range []string{s.url, ts.URL} {
			a := firstID(t, post(t, base, crmsim.PathV1, s, "action", "list"))
			b := firstID(t, post(t, base, crmsim.PathV1, s, "action", "list", "offset", "1", "first", "old"))
			if a != b {
				t.Errorf("%s: v1 list offset=1&first=old starts at %s, offset 0 at %s: parameters honoured", base, b, a)
			}
		}
	})
}

type reply struct {
	status int
	body   string
}

// shape is what a client can tell apart: empty, JSON success/error, or a PHP page.
func (r reply) shape() string {
	b := strings.TrimSpace(r.body)
	switch {
	case b == "":
		return "empty"
	case strings.Contains(b, "<b>Fatal error</b>"):
		return "php-fatal-page"
	case strings.HasPrefix(b, `{"result":"Error"`):
		return "json-error"
	case strings.HasPrefix(b, "{"):
		return "json"
	}
	return "other"
}

func post(t *testing.T, base, path string, s settings, kv ...string) reply {
	t.Helper()
	v := url.Values{"login": {s.login}, "apikey": {s.apikey}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.PostForm(strings.TrimRight(base, "/")+path, v)
	if err != nil {
		t.Fatalf("POST %s: %v", path, redact(err.Error(), s.apikey))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return reply{status: resp.StatusCode, body: string(b)}
}

func listCount(t *testing.T, base string, s settings) int {
	t.Helper()
	r := post(t, base, crmsim.PathV2, s, "action", "list", "offset", "1")
	var l struct {
		Data []json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal([]byte(r.body), &l)
	if len(l.Data) > 0 {
		return 200 + len(l.Data)
	}
	r = post(t, base, crmsim.PathV2, s, "action", "list")
	_ = json.Unmarshal([]byte(r.body), &l)
	return len(l.Data)
}

func firstID(t *testing.T, r reply) string {
	t.Helper()
	var l struct {
		Data []struct {
			ID any `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.body), &l); err != nil || len(l.Data) == 0 {
		t.Fatalf("list: HTTP %d %.200s", r.status, r.body)
	}
	return fmt.Sprint(l.Data[0].ID)
}

// TestSimulatorSourcesMatchRealCRM sends the same v2 adds to the real CRM
// and to the simulator and compares the client source each lead is filed
// under and the utm_source stored: by utm_source first, then by name, a
// new source when none matches, a number taken as a name. Names are
// unique to the run: the real CRM keeps its sources.
func TestSimulatorSourcesMatchRealCRM(t *testing.T) {
	s := realCRM(t)
	sim, err := crmsim.New(crmsim.Config{APIKey: s.apikey, Users: []crmsim.User{{Login: s.login, Name: "Admin", Active: true, Coordinator: true}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { ts.Close(); sim.Close() })
	run := time.Now().Format("150405")
	a, u, y := "src"+run, "utm"+run, "yx"+run
	adds := [][]string{
		{"clientpath", a},
		{"utm_source", u},
		{"partner", a},
		{"clientpath", a, "utm_source", y},
		{"clientpath", "other" + run, "utm_source", y},
		{"clientpath", " " + strings.ToUpper(a) + " "},
		{"clientpath", "9" + run},
	}
	for _, kv := range adds {
		var got [2]string
		for i, base := range []string{s.url, ts.URL} {
			add := post(t, base, crmsim.PathV2, s, append([]string{"action", "add", "title", "sources " + run, "email", "src" + run + "@sbs.test"}, kv...)...)
			var r struct {
				ID json.Number `json:"id"`
			}
			if err := json.Unmarshal([]byte(add.body), &r); err != nil || r.ID == "" {
				t.Fatalf("%s add %v: HTTP %d %.200s", base, kv, add.status, add.body)
			}
			info := post(t, base, crmsim.PathV2, s, "action", "info", "id", r.ID.String())
			var m struct {
				Data struct {
					Name    any `json:"clientpathName"`
					UTM     any `json:"utm_source"`
					Partner any `json:"partner"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(info.body), &m); err != nil {
				t.Fatalf("%s info: %.200s", base, info.body)
			}
			got[i] = fmt.Sprintf("source %q utm_source %q partner %v", orEmpty(m.Data.Name), orEmpty(m.Data.UTM), m.Data.Partner)
		}
		t.Logf("%v: real CRM %s; simulator %s", kv, got[0], got[1])
		if got[0] != got[1] {
			t.Errorf("%v: the real CRM files it as %s, the simulator as %s", kv, got[0], got[1])
		}
	}
}

// orEmpty prints a JSON null as "".
func orEmpty(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
