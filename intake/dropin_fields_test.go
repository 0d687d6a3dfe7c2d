package intake

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"leadrelay/lead"
)

// TestDropInFieldNames: the names real forms use reach the lead's fields
// (the alias table, then the site's own mapping); a field that maps to
// nothing is kept as a labelled line of the description, and logged once
// per site and name, without its value.
func TestDropInFieldNames(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(_ *env, o *Options) {
		o.SiteSettings = map[string]SiteSettings{"blog": {Fields: map[string]string{"name": "company", "contact": "title", "kommentariy": "description"}}}
	})
	blog := func(kv ...string) string {
		return strings.Replace(form(kv...), "login=shop&apikey="+shopKey, "login=blog&apikey="+blogKey, 1)
	}
	tests := []struct {
		name  string
		query string
		want  lead.Lead
	}{
		{"name, tel and an unknown field", form("name", "Ann", "tel", "+7 900 123-45-67", "favourite_colour", "green"),
			lead.Lead{Title: "Ann", Phone: "+7 900 123-45-67", Description: "favourite_colour: green\nSite: shop"}},
		{"message, fio, e-mail", form("fio", "Иванов Иван", "E-mail", "ivan@example.com", "message", "Перезвоните", "comment", "после 18:00"),
			lead.Lead{Title: "Иванов Иван", Email: "ivan@example.com", Description: "Перезвоните\ncomment: после 18:00\nSite: shop"}},
		{"the site's mapping wins over the alias table", blog("name", "ACME", "contact", "Bob", "kommentariy", "Hi", "tel", "+79001234567"),
			lead.Lead{Title: "Bob", Company: "ACME", Phone: "+79001234567", Description: "Hi\nSite: blog"}},
		{"a multi-line unknown field is one line", form("email", "a@example.com", "address", "Lenina 1\r\nflat 2"),
			lead.Lead{Email: "a@example.com", Description: "address: Lenina 1  flat 2\nSite: shop"}},
		// Found by FuzzDecodeForm: a name's control characters reached the
		// description, so the queued lead was not normalized.
		{"control characters in an unknown name", form("phone", "000", "\x00\x01note\u2028", "0\x00"),
			lead.Lead{Phone: "000", Description: "note: 0\nSite: shop"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, dropGet(tc.query))
			if got := e.enqueued(t, successID(t, rec)); got != tc.want {
				t.Errorf("enqueued %+v\nwant     %+v", got, tc.want)
			}
		})
	}
	// The JSON API still takes wire names only.
	rec := e.do(t, jsonPost(`{"name":"Ann","tel":"+79001234567"}`, shopKey))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "name") {
		t.Errorf("JSON API with aliases: %d %s, want 400 naming them", rec.Code, rec.Body)
	}
}

// TestUnmappedLoggedOnce: each unmapped name is logged at info once per
// site, names only; a site that makes up names fills a bounded set.
func TestUnmappedLoggedOnce(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	u := newUnmappedLog(zap.New(core))
	for range 3 {
		u.saw("shop", []extraField{{"colour", "green"}, {"size", "XL"}})
		u.saw("blog", []extraField{{"colour", "red"}})
	}
	if n := logs.Len(); n != 3 {
		t.Fatalf("%d lines for 3 site-and-name pairs: %v", n, logs.All())
	}
	for i := range 3 * maxLoggedNames {
		u.saw("spam", []extraField{{fmt.Sprintf("f%d", i), "v"}})
	}
	if n := logs.Len() - 3; n != maxLoggedNames+1 {
		t.Errorf("%d lines for a site with many names, want %d and one that says the rest go unlogged", n, maxLoggedNames+1)
	}
	if n := len(u.seen["spam"]); n > maxLoggedNames+1 {
		t.Errorf("%d names remembered, want at most %d", n, maxLoggedNames+1)
	}
	for _, entry := range logs.All() {
		for _, v := range []string{"green", "XL", "red"} {
			if _, ok := entry.ContextMap()["value"]; ok || strings.Contains(fmt.Sprint(entry.ContextMap()), v) {
				t.Errorf("value logged: %v", entry.ContextMap())
			}
		}
	}
}

// TestAttribution: every lead, through every API, names its site the way
// the site's settings say; the default is a description line.
func TestAttribution(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(_ *env, o *Options) {
		o.Sites["oldshop"] = "oldshop-key-0123456789abc"
		o.Sites["utm"] = "utm-site-key-0123456789abc"
		o.SiteSettings = map[string]SiteSettings{
			"oldshop": {Attribution: lead.AttributePath},
			"utm":     {Attribution: lead.AttributeUTMSource},
			"blog":    {Attribution: lead.AttributePartner},
		}
	})
	drop := func(site, key, extra string) *http.Request {
		return dropGet("login=" + site + "&apikey=" + key + "&action=add&title=Ann" + extra)
	}
	tests := []struct {
		name string
		req  *http.Request
		want lead.Lead
	}{
		{"default: a description line", jsonPost(`{"title":"Ann","description":"Hi"}`, shopKey), lead.Lead{Title: "Ann", Description: "Hi\nSite: shop"}},
		{"path, drop-in", drop("oldshop", "oldshop-key-0123456789abc", ""), lead.Lead{Title: "Ann", Path: "oldshop"}},
		{"path, JSON", jsonPost(`{"title":"Ann","email":"a@example.com"}`, "oldshop-key-0123456789abc"),
			lead.Lead{Title: "Ann", Email: "a@example.com", Path: "oldshop"}},
		{"the lead's own path stays", drop("oldshop", "oldshop-key-0123456789abc", "&path=Yandex"),
			lead.Lead{Title: "Ann", Path: "Yandex", Description: "Site: oldshop"}},
		{"utm_source", drop("utm", "utm-site-key-0123456789abc", ""), lead.Lead{Title: "Ann", UTMSource: "utm"}},
		{"partner", drop("blog", blogKey, ""), lead.Lead{Title: "Ann", Partner: "blog"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, tc.req)
			id := acceptedID(t, rec)
			if id == "" {
				t.Fatalf("answer %d %s", rec.Code, rec.Body)
			}
			if got := e.enqueued(t, id); got != tc.want {
				t.Errorf("enqueued %+v\nwant     %+v", got, tc.want)
			}
		})
	}
}

func TestSiteSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    SiteSettings
		want []string // in the error; nil = valid
	}{
		{"zero value", SiteSettings{}, nil},
		{"all set", SiteSettings{Charset: "CP1251", Fields: map[string]string{"fio": "title"}, Attribution: lead.AttributePath}, nil},
		{"every problem at once", SiteSettings{Charset: "latin1", Fields: map[string]string{"fio": "name", "apikey": "title", "": "title"}, Attribution: "site"},
			[]string{`charset "latin1" is none of utf-8, windows-1251, koi8-r, iso-8859-5`, `"fio" maps to "name", which is no lead field`,
				`"apikey" is the drop-in's own parameter`, "an empty form field name", `attribution "site"`}},
	}
	for _, tc := range tests {
		err := tc.s.Validate()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", tc.name, err, w)
			}
		}
	}
}
