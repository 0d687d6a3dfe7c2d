package crmsim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/testclock"
)

// seedQuery is the vendor page's example request, byte for byte.
const seedQuery = "login=vladislav%40isaler.ru&apikey=aMgiCQyj8bCToNc47BZZYrRICoWSIl&action=add&title=%D0%90%D0%BD%D0%B4%D1%80%D0%B5%D0%B5%D0%B2+%D0%B2%D0%BB%D0%B0%D0%B4%D0%B8%D1%81%D0%BB%D0%B0%D0%B2&email=vladislav%40god.ry&phone=%2B79001234567&company=SalesMan&description=The+best+crm+practice&ip=127.0.0.1&country=Ruusia&city=Perm&path=Test+Path&partner="

func TestV1SeedExample(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		send func(t *testing.T, base string) answer
	}{
		{"GET query", func(t *testing.T, base string) answer { return getRaw(t, base, PathV1, seedQuery) }},
		{"POST form", func(t *testing.T, base string) answer { return postRaw(t, base, PathV1, seedQuery) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, ts := newTestSim(t, Config{})
			a := tt.send(t, ts.URL)
			if a.status != 200 || a.ctype != "text/html; charset=utf-8" {
				t.Fatalf("status %d, Content-Type %q", a.status, a.ctype)
			}
			if want := `{"result":{"text":"Success","id":1}}`; a.body != want {
				t.Fatalf("body %s, want %s", a.body, want)
			}
			l, ok := sim.Lead(1)
			if !ok {
				t.Fatal("lead 1 not stored")
			}
			if l.Title != "Андреев владислав" || l.Email != "vladislav@god.ry" || l.Phone != "+79001234567" ||
				l.Description != "The best crm practice" || l.ClientPath != "Test Path" || l.City != "Perm" || l.Country != "Ruusia" {
				t.Errorf("stored lead %+v", l)
			}
			if l.UserLogin != "admin@example.com" || l.Status != StatusOpen {
				t.Errorf("responsible %s status %d, want coordinator and open", l.UserLogin, l.Status)
			}
		})
	}
}

func TestV1DoubleDecoding(t *testing.T) {
	t.Parallel()
	const plusKey = "k+ey%2F"
	tests := []struct {
		name  string
		query string
		want  string // result text or error code
	}{
		{"login encoded twice", "login=vladislav%2540isaler.ru&apikey=" + url.QueryEscape(url.QueryEscape(plusKey)) + "&action=stat", "data"},
		{"login encoded once", "login=vladislav%40isaler.ru&apikey=" + url.QueryEscape(url.QueryEscape(plusKey)) + "&action=stat", "data"},
		{"key with + encoded once becomes a space", "login=admin%40example.com&apikey=" + url.QueryEscape(plusKey) + "&action=stat", "400"},
		{"key sent raw", "login=admin%40example.com&apikey=k+ey%2F&action=stat", "400"},
		{"login with + encoded once becomes a space", "login=" + url.QueryEscape("a+b@example.com") + "&apikey=" + url.QueryEscape(url.QueryEscape(plusKey)) + "&action=stat", "401"},
		{"login with + encoded twice", "login=" + url.QueryEscape(url.QueryEscape("a+b@example.com")) + "&apikey=" + url.QueryEscape(url.QueryEscape(plusKey)) + "&action=stat", "data"},
	}
	users := append(testUsers(), User{Login: "a+b@example.com", Name: "Plus", Active: true})
	_, ts := newTestSim(t, Config{APIKey: plusKey, Users: users})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, send := range []func(*testing.T, string, string, string) answer{getRaw, postRaw2} {
				m := send(t, ts.URL, PathV1, tt.query).json(t)
				if tt.want == "data" {
					if _, ok := m["data"]; !ok {
						t.Fatalf("want stat data, got %v", m)
					}
					continue
				}
				e, _ := m["error"].(map[string]any)
				if e == nil || e["code"] != tt.want {
					t.Fatalf("want error %s, got %v", tt.want, m)
				}
			}
		})
	}
	t.Run("user decoded twice", func(t *testing.T) {
		t.Parallel()
		sim, ts := newTestSim(t, Config{Users: users})
		q := "login=admin%40example.com&apikey=" + testKey + "&action=add&title=x&email=plus@x.ru&user=" + url.QueryEscape(url.QueryEscape("a+b@example.com"))
		getRaw(t, ts.URL, PathV1, q)
		if l, _ := sim.Lead(1); l.UserLogin != "a+b@example.com" {
			t.Fatalf("responsible %q, want a+b@example.com", l.UserLogin)
		}
	})
}

func postRaw2(t *testing.T, base, path, body string) answer { return postRaw(t, base, path, body) }

func TestErrors(t *testing.T) {
	t.Parallel()
	_, ts := newTestSim(t, Config{Faults: Faults{RejectMarker: "[DLQ]"}})
	_, empty := newTestSim(t, Config{})
	tests := []struct {
		name string
		base string
		path string
		form url.Values
		want string
	}{
		{"v1 wrong key", ts.URL, PathV1, url.Values{"login": {"admin@example.com"}, "apikey": {"nope"}, "action": {"stat"}},
			`{"result":"Error","error":{"code":"400","text":"Не верный API key"}}`},
		{"v1 no key", ts.URL, PathV1, url.Values{"login": {"admin@example.com"}, "action": {"stat"}},
			`{"result":"Error","error":{"code":"400","text":"Не верный API key"}}`},
		{"v1 unknown login", ts.URL, PathV1, url.Values{"login": {"who@example.com"}, "apikey": {testKey}, "action": {"stat"}},
			`{"result":"Error","error":{"code":"401","text":"Неизвестный пользователь"}}`},
		{"v1 unknown action", ts.URL, PathV1, auth("action", "delete"),
			`{"result":"Error","error":{"code":"402","text":"Не известный метод"}}`},
		{"v1 missing action", ts.URL, PathV1, auth(),
			`{"result":"Error","error":{"code":"402","text":"Не известный метод"}}`},
		{"v1 empty list", empty.URL, PathV1, auth("action", "list"),
			`{"result":"Error","error":{"code":"404","text":"Не найдено"}}`},
		{"v1 add rejected", ts.URL, PathV1, auth("action", "add", "title", "bad [DLQ] lead"),
			`{"error":{"code":"1","text":"Ошибка добавления лида. Запись отклонена (crmsim reject marker)"},"Error":"Ошибка добавления лида. Запись отклонена (crmsim reject marker)"}`},
		{"v2 wrong key is 401", ts.URL, PathV2, url.Values{"login": {"admin@example.com"}, "apikey": {"nope"}, "action": {"stat"}},
			`{"result":"Error","error":{"code":401,"text":"Неизвестный пользователь"}}`},
		{"v2 unknown login", ts.URL, PathV2, url.Values{"login": {"who@example.com"}, "apikey": {testKey}, "action": {"stat"}},
			`{"result":"Error","error":{"code":401,"text":"Неизвестный пользователь"}}`},
		{"v2 unknown action", ts.URL, PathV2, auth("action", "delete"),
			`{"result":"Error","error":{"code":402,"text":"Не известный метод"}}`},
		{"v2 empty list", empty.URL, PathV2, auth("action", "list"),
			`{"result":"Error","error":{"code":404,"text":"Не найдено"}}`},
		{"v2 add rejected", ts.URL, PathV2, auth("action", "add", "email", "[DLQ]@x.ru"),
			`{"result":"Error","error":{"code":1,"text":"Ошибка добавления заявки. Запись отклонена (crmsim reject marker)"}}`},
		{"login case-insensitive like MySQL", ts.URL, PathV2, url.Values{"login": {"Admin@Example.com"}, "apikey": {testKey}, "action": {"stat"}},
			`{"data":[{"login":"admin@example.com","open":0,"processed":0},{"login":"sales1@example.com","open":0,"processed":0},{"login":"sales2@example.com","open":0,"processed":0},{"login":"vladislav@isaler.ru","open":0,"processed":0}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := postForm(t, tt.base, tt.path, tt.form)
			if a.status != 200 {
				t.Fatalf("HTTP %d, want 200", a.status)
			}
			if a.body != tt.want {
				t.Fatalf("body\n%s\nwant\n%s", a.body, tt.want)
			}
		})
	}
}

func TestV1QuoteBreaksAnswerNotAdd(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{})
	a := postForm(t, ts.URL, PathV1, auth("action", "add", "title", "O'Brien"))
	if a.status != 200 || !strings.Contains(a.body, "<b>Fatal error</b>") {
		t.Fatalf("want PHP fatal, got %d %s", a.status, a.body)
	}
	l, ok := sim.Lead(1)
	if !ok || l.Title != "OBrien" {
		t.Fatalf("lead should be stored stripped, got %+v %v", l, ok)
	}
}

func TestV1InfoAndList(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC))
	_, ts := newTestSim(t, Config{Clock: clock.Now, Location: time.UTC})
	postForm(t, ts.URL, PathV1, auth("action", "add", "title", "<b>Bob</b> «the» `x`", "email", "bob@x.ru", "path", "Site", "user", "sales1@example.com"))

	a := postForm(t, ts.URL, PathV1, auth("action", "info", "id", "1"))
	want := `{"result":{"data":{"id":"1","datum":"2026-03-15 10:00:00","datum_do":null,"status":"1","rezult":"0","title":"Bob the x","email":"bob@x.ru","phone":"","site":"","company":"","description":"","ip":"","city":"","country":"","iduser":"2","clientpath":"1","pid":"0","clid":"0","did":"0","partner":"0","utm_source":"","utm_medium":"","utm_campaign":"","utm_term":"","utm_content":"","utm_referrer":"","statusName":"В работе","rezultName":null,"clientpathName":"Site","userName":"Sales One","client":null,"person":null,"deal":null},"id":"1"}}`
	if a.body != want {
		t.Errorf("info\n%s\nwant\n%s", a.body, want)
	}
	a = postForm(t, ts.URL, PathV1, auth("action", "info", "id", "77"))
	if want := `{"result":{"data":{"description":"","statusName":"","rezultName":null,"clientpathName":"","userName":null,"client":null,"person":null,"deal":null},"id":"77"}}`; a.body != want {
		t.Errorf("info stub\n%s\nwant\n%s", a.body, want)
	}
	a = postForm(t, ts.URL, PathV1, auth("action", "list"))
	want = `{"data":[{"id":"1","datum":"2026-03-15 10:00:00","datum_do":null,"email":"bob@x.ru","phone":"","site":"","company":"","city":"","country":"","content":"","clid":"0","client":null,"pid":"0","person":null,"did":"0","deal":null,"user":"Sales One","userName":"Не определен","status":"1","statusName":"В работе","rezult":"0","rezultName":"0","clientpath":"1","clientpathName":"Site"}]}`
	if a.body != want {
		t.Errorf("list\n%s\nwant\n%s", a.body, want)
	}
}

// addMany adds n leads through v2, one minute apart on clock.
func addMany(t *testing.T, sim *Sim, clock *testclock.Clock, n int) {
	t.Helper()
	for i := range n {
		sim.mu.Lock()
		sim.addLead(leadInput{api: APIv2, login: "admin@example.com", title: fmt.Sprintf("lead %d", i+1)})
		sim.mu.Unlock()
		clock.Advance(time.Minute)
	}
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	sim, ts := newTestSim(t, Config{Clock: clock.Now, Location: time.UTC})
	addMany(t, sim, clock, 450)
	for _, path := range []string{PathV1, PathV2} {
		for _, tt := range []struct {
			offset, first string
			n             int
			firstID       float64
		}{
			{"0", "", 200, 450}, {"1", "", 200, 250}, {"2", "", 50, 50}, {"3", "", 0, 0},
			{"0", "old", 200, 1}, {"2", "old", 50, 401}, {"", "new", 200, 450},
		} {
			t.Run(fmt.Sprintf("%s offset=%s first=%s", path, tt.offset, tt.first), func(t *testing.T) {
				t.Parallel()
				m := postForm(t, ts.URL, path, auth("action", "list", "offset", tt.offset, "first", tt.first)).json(t)
				if tt.n == 0 {
					e, _ := m["error"].(map[string]any)
					if e == nil || fmt.Sprint(e["code"]) != "404" {
						t.Fatalf("want 404, got %v", m)
					}
					return
				}
				data, _ := m["data"].([]any)
				if len(data) != tt.n {
					t.Fatalf("got %d items, want %d", len(data), tt.n)
				}
				id := data[0].(map[string]any)["id"]
				if fmt.Sprint(id) != fmt.Sprint(tt.firstID) {
					t.Fatalf("first id %v, want %v", id, tt.firstID)
				}
				if _, isString := id.(string); isString != (path == PathV1) {
					t.Fatalf("id %#v: v1 wants strings, v2 numbers", id)
				}
			})
		}
	}
}

func TestListOrderUnknownColumn(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{})
	sim.mu.Lock()
	sim.addLead(leadInput{api: APIv1, title: "b"})
	sim.addLead(leadInput{api: APIv1, title: "a"})
	sim.mu.Unlock()
	m := postForm(t, ts.URL, PathV2, auth("action", "list", "order", "id", "first", "old")).json(t)
	if got := m["data"].([]any)[0].(map[string]any)["id"]; got != float64(1) {
		t.Errorf("order=id first=old: first id %v", got)
	}
	a := postForm(t, ts.URL, PathV2, auth("action", "list", "order", "nope"))
	if !strings.Contains(a.body, "Unknown column 'nope'") {
		t.Errorf("unknown column: %s", a.body)
	}
}

func listIDs(t *testing.T, base, path string, kv ...string) []string {
	t.Helper()
	m := postForm(t, base, path, auth(append([]string{"action", "list", "first", "old"}, kv...)...)).json(t)
	var ids []string
	data, _ := m["data"].([]any)
	for _, d := range data {
		ids = append(ids, fmt.Sprint(d.(map[string]any)["id"]))
	}
	return ids
}

func TestListDateFilters(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Time{})
	sim, ts := newTestSim(t, Config{Clock: clock.Now, Location: time.UTC})
	for _, d := range []string{"2026-03-10 09:00:00", "2026-03-15 00:00:00", "2026-03-15 23:59:59", "2026-03-20 12:00:00"} {
		tm, _ := time.Parse(time.DateTime, d)
		clock.Set(tm)
		sim.mu.Lock()
		sim.addLead(leadInput{api: APIv1, title: d})
		sim.mu.Unlock()
	}
	tests := []struct {
		name       string
		path       string
		start, end string
		want       string
	}{
		{"v1 both inclusive", PathV1, "2026-03-15", "2026-03-20", "[2 3 4]"},
		{"v1 same day", PathV1, "2026-03-15", "2026-03-15", "[2 3]"},
		{"v1 only start", PathV1, "2026-03-15", "", "[2 3 4]"},
		{"v1 only end", PathV1, "", "2026-03-15", "[1]"},
		{"v1 none", PathV1, "", "", "[1 2 3 4]"},
		{"v2 both inclusive", PathV2, "2026-03-10", "2026-03-15", "[1 2 3]"},
		{"v2 only start matches nothing (as shipped)", PathV2, "2026-03-15", "", "[]"},
		{"v2 only end is broken (as shipped)", PathV2, "", "2026-03-21", "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fmt.Sprint(listIDs(t, ts.URL, tt.path, "dateStart", tt.start, "dateEnd", tt.end))
			if got != tt.want {
				t.Fatalf("ids %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStatAfterSetStatus(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	sim, ts := newTestSim(t, Config{Clock: clock.Now, Location: time.UTC})
	add := func(user string) {
		postForm(t, ts.URL, PathV1, auth("action", "add", "title", "x", "user", user))
	}
	add("sales1@example.com") // 1: in work (routed to an operator)
	add("sales1@example.com") // 2
	add("sales1@example.com") // 3
	add("")                   // 4: coordinator, open
	if err := sim.SetStatus(3, StatusProcessed, 0); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetStatus(4, StatusClosed, 1); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetStatus(99, 2, 0); err == nil {
		t.Error("SetStatus of an unknown id should fail")
	}
	a := postForm(t, ts.URL, PathV1, url.Values{"login": {"vladislav@isaler.ru"}, "apikey": {testKey}, "action": {"stat"}})
	want := `{"data":[{"title":"admin@example.com","open":"0","processed":"1"},{"title":"sales1@example.com","open":"2","processed":"1"},{"title":"sales2@example.com","open":"0","processed":"0"},{"title":"vladislav@isaler.ru","open":"0","processed":"0"}]}`
	if a.body != want {
		t.Errorf("v1 stat\n%s\nwant\n%s", a.body, want)
	}
	a = postForm(t, ts.URL, PathV2, auth("action", "stat"))
	want = `{"data":[{"login":"admin@example.com","open":0,"processed":1},{"login":"sales1@example.com","open":2,"processed":1},{"login":"sales2@example.com","open":0,"processed":0},{"login":"vladislav@isaler.ru","open":0,"processed":0}]}`
	if a.body != want {
		t.Errorf("v2 stat\n%s\nwant\n%s", a.body, want)
	}
	// Next month nothing counts, unless the range covers March.
	clock.Set(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
	var r struct{ Data []UserStat }
	json.Unmarshal([]byte(postForm(t, ts.URL, PathV2, auth("action", "stat")).body), &r)
	if r.Data[1].Open != 0 || r.Data[1].Processed != 0 {
		t.Errorf("April stat %+v, want zeros", r.Data[1])
	}
	json.Unmarshal([]byte(postForm(t, ts.URL, PathV2, auth("action", "stat", "dateStart", "2026-03-01", "dateEnd", "2026-03-31")).body), &r)
	if r.Data[1].Open != 2 || r.Data[1].Processed != 1 {
		t.Errorf("March range stat %+v, want open 2 processed 1", r.Data[1])
	}
}

func TestResponsibleUser(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{})
	steps := []struct {
		path, email, phone, user string
		want                     string
	}{
		{PathV1, "a@x.ru", "+7 900 111-22-33", "sales1@example.com", "sales1@example.com"},
		{PathV1, "A@X.ru", "", "sales2@example.com", "sales1@example.com"}, // e-mail match wins over user
		{PathV2, "new@x.ru", "8 (900) 111 22 33", "", "admin@example.com"}, // phone digits differ: 8... vs +7...
		{PathV2, "other@x.ru", "79001112233", "", "sales1@example.com"},    // phone match
		{PathV1, "b@x.ru", "", "nobody@example.com", "admin@example.com"},  // unknown user: coordinator
		{PathV2, "c@x.ru", "", "sales2@example.com", "admin@example.com"},  // v2 ignores user
		{PathV1, "d@x.ru", "", "", "admin@example.com"},
	}
	for i, st := range steps {
		postForm(t, ts.URL, st.path, auth("action", "add", "title", "t", "email", st.email, "phone", st.phone, "user", st.user))
		l, ok := sim.Lead(int64(i + 1))
		if !ok || l.UserLogin != st.want {
			t.Errorf("step %d: responsible %q, want %q", i+1, l.UserLogin, st.want)
		}
	}
}

func TestAddWithIDUpdates(t *testing.T) {
	t.Parallel()
	sim, ts := newTestSim(t, Config{})
	addV2(t, ts.URL, "title", "first")
	a := postForm(t, ts.URL, PathV1, auth("action", "add", "id", "1", "title", "rewritten"))
	if a.body != `{"result":{"text":"Success","id":1}}` {
		t.Fatalf("update answer %s", a.body)
	}
	a = postForm(t, ts.URL, PathV2, auth("action", "add", "id", "42", "title", "ghost"))
	if a.body != `{"result":"Success","id":42}` {
		t.Fatalf("update of unknown id answer %s", a.body)
	}
	leads := sim.Leads()
	if len(leads) != 1 || leads[0].Title != "rewritten" || leads[0].Updates != 1 {
		t.Fatalf("leads %+v", leads)
	}
}

func TestListSortsWhenClockGoesBack(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC))
	sim, ts := newTestSim(t, Config{Clock: clock.Now, Location: time.UTC})
	addMany(t, sim, clock, 2)                              // ids 1, 2 on 03-10
	clock.Set(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) // id 3 is older
	addMany(t, sim, clock, 1)
	for path, want := range map[string]string{PathV1: "[2 1 3]", PathV2: "[2 1 3]"} {
		m := postForm(t, ts.URL, path, auth("action", "list")).json(t)
		var ids []string
		for _, d := range m["data"].([]any) {
			ids = append(ids, fmt.Sprint(d.(map[string]any)["id"]))
		}
		if got := fmt.Sprint(ids); got != want {
			t.Errorf("%s newest first: %s, want %s", path, got, want)
		}
	}
	if got := fmt.Sprint(listIDs(t, ts.URL, PathV2)); got != "[3 1 2]" {
		t.Errorf("oldest first: %s", got)
	}
}
