package intake

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"leadrelay/intake/intaketest"
	"leadrelay/lead"
)

// seedQuery is the seed's example request, byte for byte.
const seedQuery = "login=vladislav%40isaler.ru&apikey=aMgiCQyj8bCToNc47BZZYrRICoWSIl&action=add" +
	"&title=%D0%90%D0%BD%D0%B4%D1%80%D0%B5%D0%B5%D0%B2+%D0%B2%D0%BB%D0%B0%D0%B4%D0%B8%D1%81%D0%BB%D0%B0%D0%B2" +
	"&email=vladislav%40god.ry&phone=%2B79001234567&company=SalesMan&description=The+best+crm+practice" +
	"&ip=127.0.0.1&country=Ruusia&city=Perm&path=Test+Path&partner="

// seedLead is the seed's lead as enqueued: the description's last line
// names the site (lead.DefaultAttribution).
var seedLead = lead.Lead{
	Title: "Андреев владислав", Email: "vladislav@god.ry", Phone: "+79001234567", Company: "SalesMan",
	Description: "The best crm practice\nSite: " + seedLogin, IP: "127.0.0.1", Country: "Ruusia", City: "Perm", Path: "Test Path",
}

var successRE = regexp.MustCompile(`^\{"result":\{"text":"Success","id":"(ld_[0-9a-f]{24})"\}\}$`)

func dropGet(query string) *http.Request { return intaketest.DropInGet(query) }

func dropPost(form string) *http.Request {
	return intaketest.DropInPost("application/x-www-form-urlencoded", form)
}

func dropMultipart(t *testing.T, fields map[string]string) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	mw.Close()
	r := httptest.NewRequest(http.MethodPost, "/developer/v1/leads", &buf)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return r
}

// TestDropInSeedExample sends the seed's exact request as GET, as a POST
// form and as multipart, and checks the answer and what was enqueued.
func TestDropInSeedExample(t *testing.T) {
	t.Parallel()
	form, _ := url.ParseQuery(seedQuery)
	flat := map[string]string{}
	for k := range form {
		flat[k] = form.Get(k)
	}
	tests := []struct {
		name string
		req  func(t *testing.T) *http.Request
	}{
		{"GET", func(*testing.T) *http.Request { return dropGet(seedQuery) }},
		{"POST form", func(*testing.T) *http.Request { return dropPost(seedQuery) }},
		{"POST multipart", func(t *testing.T) *http.Request { return dropMultipart(t, flat) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			rec := e.do(t, tc.req(t))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if p := e.payload(t, successID(t, rec)); p.Site != seedLogin || p.Lead != seedLead {
				t.Errorf("enqueued %+v from %s; want %+v from %s", p.Lead, p.Site, seedLead, seedLogin)
			}
			// No Idempotency-Key from old sites: the same form again is the same lead.
			if again := e.do(t, tc.req(t)); again.Body.String() != rec.Body.String() || e.queueSize(t) != 1 {
				t.Errorf("repeat answered %s; tasks %d", again.Body, e.queueSize(t))
			}
		})
	}
}

func TestDropInAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	shop := "login=shop&apikey=" + url.QueryEscape(shopKey)
	wrongKey := `{"result":"Error","error":{"code":"400","text":"Не верный API key"}}`
	unknownUser := `{"result":"Error","error":{"code":"401","text":"Неизвестный пользователь"}}`
	unknownMethod := `{"result":"Error","error":{"code":"402","text":"Не известный метод"}}`
	tests := []struct {
		name   string
		req    *http.Request
		status int
		want   string // exact body, or "success"
	}{
		{"wrong key", dropGet("login=shop&apikey=wrong-wrong-wrong&action=add&title=Ann"), 200, wrongKey},
		{"no key", dropGet("login=shop&action=add&title=Ann"), 200, wrongKey},
		{"another site's login", dropGet("login=blog&apikey=" + url.QueryEscape(shopKey) + "&action=add&title=Ann"), 200, unknownUser},
		{"unknown login", dropGet("login=nobody&apikey=" + url.QueryEscape(shopKey) + "&action=add&title=Ann"), 200, unknownUser},
		{"stat", dropGet(shop + "&action=stat"), 200, unknownMethod},
		{"list", dropPost(shop + "&action=list"), 200, unknownMethod},
		{"info", dropGet(shop + "&action=info&id=1"), 200, unknownMethod},
		{"no action", dropGet(shop + "&title=Ann"), 200, unknownMethod},
		{"invalid lead", dropGet(shop + "&action=add&email=not-mail&phone=12"), 200,
			`{"error":{"code":"1","text":"Ошибка добавления лида. email: not an e-mail address; phone: not a phone number: it holds 2 digits, at least 3 needed"},` +
				`"Error":"Ошибка добавления лида. email: not an e-mail address; phone: not a phone number: it holds 2 digits, at least 3 needed"}`},
		{"empty lead", dropPost(shop + "&action=add&partner="), 200,
			`{"error":{"code":"1","text":"Ошибка добавления лида. title: one of title, email or phone is required"},` +
				`"Error":"Ошибка добавления лида. title: one of title, email or phone is required"}`},
		{"POST wins over GET", func() *http.Request {
			r := dropPost(shop + "&action=add&title=Ann")
			r.URL.RawQuery = "action=stat"
			return r
		}(), 200, "success"},
		{"double-encoded login", dropGet("login=vladislav%2540isaler.ru&apikey=" + seedKey + "&action=add&title=Ann"), 200, "success"},
		{"double-encoded key with +", dropGet("login=plus&apikey=" + url.QueryEscape(url.QueryEscape(plusKey)) + "&action=add&title=Ann"), 200, "success"},
		{"last repeated login wins", dropGet("login=plus&apikey=" + seedKey + "&action=add&title=Ann&login=vladislav%40isaler.ru"), 200, "success"},
		{"key with + sent once-encoded", dropGet("login=plus&apikey=" + url.QueryEscape(plusKey) + "&action=add&title=Bob"), 200, "success"},
		{"malformed escapes kept like PHP", dropGet(shop + "&action=add&title=100%+sure%zz"), 200, "success"},
		{"extra fields and id", dropGet(shop + "&action=add&title=Eve&id=940&site=x&uids[a]=1&submit=Send"), 200, "success"},
		{"PUT", httptest.NewRequest(http.MethodPut, "/developer/v1/leads", nil), 405, ""},
		{"10 MB form", dropPost(shop + "&action=add&title=" + strings.Repeat("a", 10<<20)), 413, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := e.do(t, tc.req)
			if apiStatus(rec) != tc.status || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%d %q: %s", apiStatus(rec), rec.Header().Get("Content-Type"), rec.Body)
			}
			switch got := rec.Body.String(); {
			case tc.want == "success":
				if !successRE.MatchString(got) {
					t.Errorf("answer = %s, want success", got)
				}
			case tc.want != "":
				if got != tc.want {
					t.Errorf("answer = %s\nwant     %s", got, tc.want)
				}
			default:
				if m := decodeBody(t, rec); m["Error"] == nil {
					t.Errorf("answer = %s, want the add-failure shape", got)
				}
			}
		})
	}
}

// TestDropInDropsID: an id never reaches the task (it would turn the CRM's
// add into an update), nor does a form's machinery (submit, tokens); an
// unknown field is kept as a line of the description.
func TestDropInDropsID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rec := e.do(t, dropGet("login=shop&apikey="+url.QueryEscape(shopKey)+"&action=add&title=Eve&id=940&site=x&submit=Send&_token=abc"))
	// Decode rather than search the bytes: a timestamp or hash may hold "940".
	var p struct {
		Site string         `json:"site"`
		Lead map[string]any `json:"lead"`
	}
	payload := e.taskPayload(t, successID(t, rec))
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Site != "shop" || len(p.Lead) != 2 || p.Lead["title"] != "Eve" || p.Lead["description"] != "site: x\nSite: shop" {
		t.Errorf("payload carries a dropped field: %s", payload)
	}
	var dropped bool
	for _, entry := range e.logs.FilterMessage("drop-in fields not forwarded").All() {
		dropped = entry.ContextMap()["dropped_id"] == true
	}
	if !dropped {
		t.Error("dropped id not logged at debug")
	}
}
