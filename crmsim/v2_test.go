package crmsim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/testclock"
)

func TestV2JSONMode(t *testing.T) {
	t.Parallel()
	hdr := map[string]string{"login": "admin@example.com", "apikey": testKey}
	add := map[string]any{"action": "add", "title": `it's "quoted"`, "uids": map[string]any{"relay": "r-1", "n": 7}}
	tests := []struct {
		name    string
		ctype   string
		body    any
		headers map[string]string
		query   string
		want    string // prefix of the body
	}{
		{"json with header auth", "application/json", add, hdr, "", `{"result":"Success","id":`},
		{"json with body auth", "application/json",
			map[string]any{"action": "stat", "login": "admin@example.com", "apikey": testKey}, nil, "", `{"data":[`},
		{"json header key but login only in body", "application/json",
			map[string]any{"action": "stat", "login": "admin@example.com"}, map[string]string{"apikey": testKey}, "", `{"result":"Error","error":{"code":401`},
		{"json wrong header key", "application/json", add, map[string]string{"login": "admin@example.com", "apikey": "x"}, "", `{"result":"Error","error":{"code":401`},
		{"charset suffix ignores JSON and headers", "application/json; charset=utf-8", add, hdr, "", `{"result":"Error","error":{"code":401`},
		{"charset suffix with query auth: action missing", "application/json; charset=utf-8", add, nil,
			"login=admin%40example.com&apikey=" + testKey, `{"result":"Error","error":{"code":402`},
		{"invalid JSON with header auth: action missing", "application/json", "not an object", hdr, "", `{"result":"Error","error":{"code":402`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, ts := newTestSim(t, Config{})
			base := ts.URL
			a := postJSONQuery(t, base, tt.ctype, tt.body, tt.headers, tt.query)
			if a.status != 200 || a.ctype != "application/json; charset=utf-8" {
				t.Fatalf("status %d Content-Type %q", a.status, a.ctype)
			}
			if !strings.HasPrefix(a.body, tt.want) {
				t.Fatalf("body %s, want prefix %s", a.body, tt.want)
			}
		})
	}
}

func postJSONQuery(t *testing.T, base, ctype string, body any, headers map[string]string, query string) answer {
	t.Helper()
	return postJSON(t, base, ctype, body, headers, query)
}

func TestV2TextCleaning(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{})
	postJSON(t, ts.URL, "application/json", map[string]any{"action": "add", "description": `it's "quoted" <i>x</i>`},
		map[string]string{"login": "admin@example.com", "apikey": testKey}, "")
	addV2(t, ts.URL, "description", `it's "quoted"`)
	leads := sim.Leads()
	if got := leads[0].Description; got != "its quoted x" {
		t.Errorf("JSON mode stored %q, want %q", got, "its quoted x")
	}
	if got := leads[1].Description; got != "it&acute;s ”quoted”" {
		t.Errorf("form mode stored %q, want %q", got, "it&acute;s ”quoted”")
	}
}

func TestV2UIDsRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		add  func(t *testing.T, base string)
	}{
		{"JSON object", func(t *testing.T, base string) {
			postJSON(t, base, "application/json", map[string]any{"action": "add", "title": "u", "uids": map[string]any{"relay_id": "abc-1", "site": "s1"}},
				map[string]string{"login": "admin@example.com", "apikey": testKey}, "")
		}},
		{"form uids[name]", func(t *testing.T, base string) {
			v := auth("action", "add", "title", "u")
			v.Set("uids[relay_id]", "abc-1")
			v.Set("uids[site]", "s1")
			postForm(t, base, PathV2, v)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, ts := newTestSim(t, Config{})
			tt.add(t, ts.URL)
			if l, _ := sim.Lead(1); l.UIDs["relay_id"] != "abc-1" || l.UIDs["site"] != "s1" {
				t.Fatalf("stored uids %v", l.UIDs)
			}
			info := postForm(t, ts.URL, PathV2, auth("action", "info", "id", "1")).body
			if !strings.Contains(info, `"uids":[{"name":"relay_id","value":"abc-1"},{"name":"site","value":"s1"}]`) || !strings.HasSuffix(info, `,"id":1}`) {
				t.Errorf("info %s", info)
			}
			list := postForm(t, ts.URL, PathV2, auth("action", "list")).body
			if !strings.Contains(list, `"uids":[{"name":"relay_id","value":"abc-1"},{"name":"site","value":"s1"}]`) {
				t.Errorf("list %s", list)
			}
		})
	}
}

func TestV2InfoAndStub(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{})
	addV2(t, ts.URL, "title", "Ann", "clientpath", "Landing", "utm_source", "cpc", "path", "ignored", "partner", "p.ru")
	l, _ := sim.Lead(1)
	if l.ClientPath != "Landing" || l.UTMSource != "cpc" || l.Partner != "p.ru" {
		t.Errorf("stored %+v", l)
	}
	m := postForm(t, ts.URL, PathV2, auth("action", "info", "id", "1")).json(t)
	data := m["data"].(map[string]any)
	if data["id"] != float64(1) || data["title"] != "Ann" || data["clientpathName"] != "Landing" || m["id"] != float64(1) {
		t.Errorf("info %v", m)
	}
	a := postForm(t, ts.URL, PathV2, auth("action", "info", "id", "999"))
	want := `{"data":{"description":"","statusName":"","rezultName":null,"clientpathName":"","userName":null,"client":null,"person":null,"deal":null},"id":999}`
	if a.body != want {
		t.Errorf("stub\n%s\nwant\n%s", a.body, want)
	}
}

// TestV2ClientSources files leads under client sources as the real CRM
// did (2025.4, read in its clientpath and leads tables): by utm_source
// first, then by name, case-blind; a new source when none matches, even
// one with an existing name; a number is a name; utm_source alone files
// under nothing; v2 stores the source's utm_source.
func TestV2ClientSources(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{})
	tests := []struct {
		kv       []string
		sourceID int
		name     string
		utm      string
	}{
		{[]string{"clientpath", "oldshop"}, 1, "oldshop", ""},
		{[]string{"partner", "oldshop"}, 0, "", ""},
		{[]string{"utm_source", "oldshop"}, 0, "", ""},
		{[]string{"clientpath", "oldshop", "utm_source", "yandex"}, 2, "oldshop", "yandex"},
		{[]string{"clientpath", "newshop", "utm_source", "yandex"}, 2, "oldshop", "yandex"},
		{[]string{"clientpath", "3"}, 3, "3", ""},
		{[]string{"clientpath", " OLDSHOP "}, 1, "oldshop", ""},
		{[]string{"utm_source", "YANDEX"}, 2, "oldshop", "yandex"},
	}
	for i, tc := range tests {
		id := addV2(t, ts.URL, append([]string{"title", "Ann"}, tc.kv...)...)
		l, _ := sim.Lead(id)
		if l.ClientPathID != tc.sourceID || l.ClientPath != tc.name || l.UTMSource != tc.utm {
			t.Errorf("add %d %v: source %d %q utm_source %q, want %d %q %q", i+1, tc.kv, l.ClientPathID, l.ClientPath, l.UTMSource, tc.sourceID, tc.name, tc.utm)
		}
	}
	m := postForm(t, ts.URL, PathV2, auth("action", "info", "id", "2")).json(t)
	if data := m["data"].(map[string]any); data["partner"] != float64(0) {
		t.Errorf("partner %v, want 0: the CRM keeps only the id of a partner client", data["partner"])
	}
}

func TestAPISelection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		api        string
		v1OK, v2OK bool
	}{{APIv1, true, false}, {APIv2, false, true}, {"", true, true}, {APIBoth, true, true}}
	for _, tt := range tests {
		t.Run("api="+tt.api, func(t *testing.T) {
			t.Parallel()
			_, ts := newTestSim(t, Config{API: tt.api})
			for path, ok := range map[string]bool{PathV1: tt.v1OK, PathV2: tt.v2OK} {
				a := postForm(t, ts.URL, path, auth("action", "stat"))
				if (a.status == 200) != ok {
					t.Errorf("%s: HTTP %d, served=%v", path, a.status, ok)
				}
			}
		})
	}
	if _, err := New(Config{API: "v3", APIKey: "k"}); err == nil {
		t.Error("API v3 accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("empty APIKey accepted")
	}
}

// TestListOneSecond: datum is a DATETIME, whole seconds, and the CRM
// (MariaDB) reverses only the column for newest first: the leads of one
// second are listed in ascending ids, as the real CRM listed five adds of
// two seconds (3 4 5, then 1 2). An order by id is exact.
func TestListOneSecond(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 3, 10, 9, 0, 0, 100, time.UTC))
	sim, ts := newTestSim(t, Config{Clock: clock.Now, Location: time.UTC})
	for i := range 5 {
		if i == 2 {
			clock.Advance(time.Second)
		}
		clock.Advance(time.Millisecond)
		addV2(t, ts.URL, "title", fmt.Sprint("l", i))
	}
	if l, _ := sim.Lead(1); l.Datum.Nanosecond() != 0 {
		t.Errorf("datum %v keeps a fraction of a second", l.Datum)
	}
	for _, tc := range []struct {
		name string
		kv   []string
		want []string
	}{
		{"newest first by datum", nil, []string{"3", "4", "5", "1", "2"}},
		{"by id", []string{"order", "id"}, []string{"5", "4", "3", "2", "1"}},
		{"oldest first by datum", []string{"first", "old"}, []string{"1", "2", "3", "4", "5"}},
		{"newest first by title", []string{"order", "title"}, []string{"5", "4", "3", "2", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := postForm(t, ts.URL, PathV2, auth(append([]string{"action", "list"}, tc.kv...)...)).json(t)
			var ids []string
			data, _ := m["data"].([]any)
			for _, d := range data {
				ids = append(ids, fmt.Sprint(d.(map[string]any)["id"]))
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("ids %v, want %v", ids, tc.want)
			}
		})
	}
}
