package intake

import (
	"errors"
	"strings"
	"testing"

	"leadrelay/lead"
)

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		want   lead.Lead
		fields []string // bad fields, in order; nil = accepted
	}{
		{"all fields", `{"title":"Ann","email":"ann@example.com","phone":"+1 555","company":"C","description":"a\nb",` +
			`"ip":"::1","country":"RU","city":"Perm","path":"P","partner":"x.ru","user":"u","utm_source":"s",` +
			`"utm_medium":"m","utm_campaign":"c","utm_term":"t","utm_content":"n"}`,
			lead.Lead{Title: "Ann", Email: "ann@example.com", Phone: "+1 555", Company: "C", Description: "a\nb", IP: "::1",
				Country: "RU", City: "Perm", Path: "P", Partner: "x.ru", User: "u", UTMSource: "s", UTMMedium: "m",
				UTMCampaign: "c", UTMTerm: "t", UTMContent: "n"}, nil},
		{"null is empty", `{"title":"Ann","email":null}`, lead.Lead{Title: "Ann"}, nil},
		{"normalized", " {\"title\":\"  Ann\\u0000 \"} \n", lead.Lead{Title: "Ann"}, nil},
		{"HTML and SQL are data", `{"title":"<b>x</b>' OR 1=1 --"}`, lead.Lead{Title: "<b>x</b>' OR 1=1 --"}, nil},
		{"unknown, wrong type, nested, repeated", `{"Title":"x","phone":1,"city":{},"title":"a","title":"b","x":[]}`, lead.Lead{},
			[]string{"Title", "phone", "city", "title", "x"}},
		{"decode and validation problems together", `{"email":"bad","foo":"1"}`, lead.Lead{}, []string{"foo", "email"}},
		{"invalid UTF-8 in a name", "{\"ti\xfftle\":\"a\"}", lead.Lead{}, []string{"ti\uFFFDtle", "title"}},
		{"boolean", `{"title":true}`, lead.Lead{}, []string{"title"}},
		{"spam hint", `{"title":"Ann","description":"Hi","spam_hint":"bot\nfilled"}`, lead.Lead{Title: "Ann", Description: "Hi\n[spam hint: bot filled]"}, nil},
		{"spam hint too long", `{"title":"Ann","spam_hint":"` + strings.Repeat("x", 256) + `"}`, lead.Lead{}, []string{"spam_hint"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := decodeJSON([]byte(tc.body))
			if tc.fields == nil {
				if err != nil || l != tc.want {
					t.Fatalf("decodeJSON = %+v, %v; want %+v", l, err, tc.want)
				}
				return
			}
			var got []string
			var de *DecodeError
			var ve *lead.ValidationError
			switch {
			case errors.As(err, &de):
				for _, f := range de.Fields {
					got = append(got, f.Field)
				}
			case errors.As(err, &ve):
				for _, f := range ve.Fields {
					got = append(got, f.Field)
				}
			default:
				t.Fatalf("decodeJSON error = %v", err)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("bad fields = %q, want %q (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestDecodeJSONCapsProblems(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"title":"Ann"`)
	for i := 0; i < 1000; i++ {
		b.WriteString(`,"f` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `":"v"`)
	}
	b.WriteString("}")
	_, err := decodeJSON([]byte(b.String()))
	var de *DecodeError
	if !errors.As(err, &de) || len(de.Fields) != maxReported+1 {
		t.Fatalf("err = %v", err)
	}
}

func TestParseForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, query, ct, body string
		logins, apikeys               []string
		action                        string
		fields                        map[string]string
		ignored                       string
		extra                         string
		droppedID                     bool
	}{
		{name: "seed query", method: "GET", query: seedQuery, logins: []string{seedLogin}, apikeys: []string{seedKey}, action: "add",
			fields: map[string]string{"title": seedLead.Title, "email": seedLead.Email, "phone": seedLead.Phone, "company": "SalesMan",
				"description": "The best crm practice", "ip": "127.0.0.1", "country": "Ruusia", "city": "Perm", "path": "Test Path", "partner": ""}},
		{name: "GET body ignored", method: "GET", query: "action=add", ct: "application/x-www-form-urlencoded", body: "action=stat",
			action: "add", logins: []string{""}, apikeys: []string{""}, fields: map[string]string{}},
		{name: "last repeat wins, POST over GET", method: "POST", query: "title=a&title=b&action=x", ct: "application/x-www-form-urlencoded; charset=UTF-8",
			body: "action=add&email=e%40x.ru&email=f%40x.ru", action: "add", logins: []string{""}, apikeys: []string{""},
			fields: map[string]string{"title": "b", "email": "f@x.ru"}},
		{name: "double encoding", method: "GET", query: "login=a%252Bb%2540x&apikey=k%2Bz&user=u%2540x",
			logins: []string{"a+b@x", "a%2Bb%40x"}, apikeys: []string{"k z", "k+z"}, fields: map[string]string{"user": "u@x"}},
		{name: "bad second decoding", method: "GET", query: "login=a%25zz&apikey=%25", logins: []string{"a%zz"}, apikeys: []string{"%"},
			fields: map[string]string{}},
		{name: "JSON body ignored", method: "POST", ct: "application/json", body: `{"title":"x"}`, logins: []string{""}, apikeys: []string{""},
			fields: map[string]string{}},
		{name: "extras and id", method: "GET", query: "id=5&site=s&uids%5Ba%5D=1&&=x&title=T&submit=Go&_token=t&empty=", logins: []string{""}, apikeys: []string{""},
			fields: map[string]string{"title": "T"}, ignored: "_token,submit,uids[a]", extra: "site: s", droppedID: true},
		{name: "aliases", method: "POST", ct: "application/x-www-form-urlencoded",
			body: "Name=Ann&tel=%2B7+900&e-mail=a%40x.ru&message=Hi&comment=Also&fio=Ann+Lee&address=Lenina+1", logins: []string{""}, apikeys: []string{""},
			fields: map[string]string{"title": "Ann", "phone": "+7 900", "email": "a@x.ru", "description": "Hi"},
			extra:  "address: Lenina 1\ncomment: Also\nfio: Ann Lee"},
		{name: "wire name wins over alias", method: "GET", query: "title=T&name=N", logins: []string{""}, apikeys: []string{""},
			fields: map[string]string{"title": "T"}, extra: "name: N"},
		{name: "an empty wire name leaves the field to an alias", method: "GET", query: "title=&name=N", logins: []string{""}, apikeys: []string{""},
			fields: map[string]string{"title": "N"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rq, err := parseForm(tc.method, tc.query, tc.ct, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(rq.logins, "|") != strings.Join(tc.logins, "|") || strings.Join(rq.apikeys, "|") != strings.Join(tc.apikeys, "|") {
				t.Errorf("logins %q apikeys %q; want %q %q", rq.logins, rq.apikeys, tc.logins, tc.apikeys)
			}
			fc, _ := rq.content(defaultSiteForm, false)
			if rq.action != tc.action || strings.Join(fc.ignored, ",") != tc.ignored || fc.droppedID != tc.droppedID {
				t.Errorf("action %q ignored %q droppedID %v", rq.action, fc.ignored, fc.droppedID)
			}
			if got := extraLines(fc.extra); got != tc.extra {
				t.Errorf("extra lines %q, want %q", got, tc.extra)
			}
			if len(fc.fields) != len(tc.fields) {
				t.Errorf("fields = %q, want %q", fc.fields, tc.fields)
			}
			for k, v := range tc.fields {
				if fc.fields[k] != v {
					t.Errorf("%s = %q, want %q", k, fc.fields[k], v)
				}
			}
		})
	}
}

func TestParseFormMultipartErrors(t *testing.T) {
	t.Parallel()
	file := "--B\r\nContent-Disposition: form-data; name=\"title\"; filename=\"a.txt\"\r\n\r\nAnn\r\n--B--\r\n"
	tests := []struct{ name, ct, body, field string }{
		{"no boundary", "multipart/form-data", "x", ""},
		{"truncated", "multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nx", ""},
		{"file as title", "multipart/form-data; boundary=B", file, "title"},
	}
	for _, tc := range tests {
		_, err := parseForm("POST", "", tc.ct, []byte(tc.body))
		var de *DecodeError
		if !errors.As(err, &de) || (tc.field != "" && (len(de.Fields) != 1 || de.Fields[0].Field != tc.field)) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"title":"Ann","email":"ann@example.com","utm_source":"google"}`,
		`{"title":"Андреев владислав","email":"vladislav@god.ry","phone":"+79001234567","company":"SalesMan","description":"The best crm practice","ip":"127.0.0.1","country":"Ruusia","city":"Perm","path":"Test Path","partner":""}`,
		`{"title":5}`, `{"title":"a","title":"b"}`, `{"title":{"a":[1]}}`, `[]`, `{"title":"x"} x`, "{\"title\":\"\xff\"}",
		`{"description":"line\r\nline\u2028\u0000"}`, `{"email":null,"phone":"1"}`, ``, `{`,
		// Real requests: README's example, a browser form's fetch() with its
		// honeypot, a WordPress form posting through a plugin.
		`{"title":"Ann Lee","email":"ann@example.com","phone":"+79001234567","description":"Call me","utm_source":"google"}`,
		`{"title":"Ivan","phone":"+7 (900) 123-45-67","description":"Перезвоните после 18:00","path":"/contacts","spam_hint":"","utm_source":"yandex","utm_medium":"cpc","utm_campaign":"brand","utm_term":"crm","utm_content":"ad1"}`,
		`{"title":"Bot","email":"seo@spam.example","description":"<a href=\"http://spam.example\">cheap</a>","spam_hint":"http://spam.example","ip":"2001:db8::1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := decodeJSON(body)
		checkDecoded(t, l, err)
	})
}

func FuzzDecodeForm(f *testing.F) {
	f.Add("GET", seedQuery, "", []byte(nil))
	f.Add("POST", "", "application/x-www-form-urlencoded", []byte(seedQuery))
	f.Add("POST", "action=add", "multipart/form-data; boundary=B",
		[]byte("--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nAnn\r\n--B--\r\n"))
	f.Add("GET", "login=a%252B&apikey=%zz&title=%FF%2&id=1&title[]=x&email=a%40b.c", "", []byte(nil))
	// Real requests: README's PHP example (http_build_query), an old form
	// with a honeypot and a captcha, a browser's multipart form.
	f.Add("POST", "", "application/x-www-form-urlencoded",
		[]byte("login=shop&apikey=shop-key-0123456789abcdef&action=add&title=Ann+Lee&email=ann%40example.com&phone=%2B79001234567&description=Call+me&ip=203.0.113.5"))
	f.Add("POST", "login=shop&apikey=shop-key-0123456789abcdef", "application/x-www-form-urlencoded; charset=UTF-8",
		[]byte("action=add&title=%D0%98%D0%B2%D0%B0%D0%BD&phone=8-900-123-45-67&website=http%3A%2F%2Fspam.example&hp=&g-recaptcha-response=03AGdBq2&_token=abc&submit=%D0%9E%D1%82%D0%BF%D1%80%D0%B0%D0%B2%D0%B8%D1%82%D1%8C"))
	f.Add("POST", "", "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
		[]byte("------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"login\"\r\n\r\nshop\r\n"+
			"------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nadd\r\n"+
			"------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nAnn\r\n"+
			"------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"honeypot\"\r\n\r\nfilled\r\n"+
			"------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n"))
	// CI's fuzz run found a control character in an unmapped name.
	f.Add("POST", "", "application/x-www-form-urlencoded", []byte("phone=000&%00%01=0"))
	f.Fuzz(func(t *testing.T, method, query, ct string, body []byte) {
		rq, err := parseForm(method, query, ct, body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("parseForm error %T: %v", err, err)
			}
			return
		}
		if len(rq.logins) == 0 || len(rq.apikeys) == 0 {
			t.Fatal("no login or apikey candidate")
		}
		for _, f := range []siteForm{defaultSiteForm, {charset: koi8rCharset, fields: map[string]string{"x": "company"}}} {
			fc, _ := rq.content(f, false)
			if _, ok := fc.fields["id"]; ok {
				t.Fatal("id forwarded")
			}
			for _, name := range dropInHintFields {
				if contains(fc.ignored, name) {
					t.Fatalf("spam hint %s ignored", name)
				}
			}
			l, err := fc.lead()
			checkDecoded(t, l, err)
		}
	})
}

// checkDecoded: a decoder either refuses with its error types or returns a
// lead that is normalized and valid.
func checkDecoded(t *testing.T, l lead.Lead, err error) {
	t.Helper()
	if err != nil {
		var de *DecodeError
		var ve *lead.ValidationError
		if !errors.As(err, &de) && !errors.As(err, &ve) {
			t.Fatalf("error %T: %v", err, err)
		}
		if l != (lead.Lead{}) {
			t.Fatalf("refused lead is not empty: %+v", l)
		}
		return
	}
	n := l
	n.Normalize()
	if n != l {
		t.Fatalf("accepted lead is not normalized: %+v", l)
	}
	if err := l.Validate(); err != nil {
		t.Fatalf("accepted lead fails Validate: %v", err)
	}
}
