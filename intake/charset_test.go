package intake

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"leadrelay/intake/intaketest"
)

// form is a drop-in add of shop's with the lead's parameters, each value
// percent-encoded byte for byte (url.QueryEscape does not look at charsets).
func form(kv ...string) string {
	return intaketest.Form(append([]string{"login", "shop", "apikey", shopKey, "action", "add"}, kv...)...)
}

// TestDropInCharsets: the drop-in reads the charset a request declares,
// else the site's, and the lead is enqueued as the right Cyrillic text.
func TestDropInCharsets(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(_ *env, o *Options) {
		o.Sites["koi"] = "koi-site-key-0123456789abc"
		o.SiteSettings = map[string]SiteSettings{"shop": {Charset: "cp1251"}, "koi": {Charset: "KOI8-R"}}
	})
	const title, text = "Иван Петров", "Перезвоните мне, пожалуйста: ёжик"
	w1251 := func(s string) string { return intaketest.Encode(t, charmap.Windows1251, s) }
	koi := func(s string) string { return intaketest.Encode(t, charmap.KOI8R, s) }
	post := intaketest.DropInPost
	koiGet := strings.Replace(form("title", koi(title), "description", koi(text)), "login=shop&apikey="+url.QueryEscape(shopKey),
		"login=koi&apikey=koi-site-key-0123456789abc", 1)
	tests := []struct {
		name string
		req  *http.Request
	}{
		{"POST windows-1251 declared", post("application/x-www-form-urlencoded; charset=windows-1251", form("title", w1251(title), "description", w1251(text)))},
		{"POST KOI8-R declared", post("application/x-www-form-urlencoded; charset=KOI8-R", form("title", koi(title), "description", koi(text)))},
		{"POST ISO-8859-5 declared", post("application/x-www-form-urlencoded; charset=iso-8859-5",
			form("title", intaketest.Encode(t, charmap.ISO8859_5, title), "description", intaketest.Encode(t, charmap.ISO8859_5, text)))},
		{"GET in UTF-8 on a 1251 site, undeclared", dropGet(form("title", title, "description", text))},
		{"POST UTF-8 declared on a 1251 site", post("application/x-www-form-urlencoded; charset=UTF-8", form("title", title, "description", text))},
		{"GET in the site's windows-1251", dropGet(form("title", w1251(title), "description", w1251(text)))},
		{"GET in the site's KOI8-R", dropGet(koiGet)},
		{"POST without a charset, in the site's", post("application/x-www-form-urlencoded", form("title", w1251(title), "description", w1251(text)))},
		{"_charset_ field", post("application/x-www-form-urlencoded", form("_charset_", "koi8-r", "title", koi(title), "description", koi(text)))},
		{"an unknown label counts as none", post("application/x-www-form-urlencoded; charset=x-mac-cyrillic", form("title", w1251(title), "description", w1251(text)))},
		{"multipart with a charset", func() *http.Request {
			body := "--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n" + koi(title) + "\r\n" +
				"--B\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n" + koi(text) + "\r\n--B--\r\n"
			r := post("multipart/form-data; boundary=B; charset=koi8-r", body)
			r.URL.RawQuery = form() // the credentials
			return r
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, tc.req)
			m := successRE.FindStringSubmatch(rec.Body.String())
			if m == nil || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("answer %q %s, want success", rec.Header().Get("Content-Type"), rec.Body)
			}
			l := e.enqueued(t, m[1])
			if l.Title != title || !strings.HasPrefix(l.Description, text+"\n") {
				t.Errorf("enqueued title %q description %q; want %q %q", l.Title, l.Description, title, text)
			}
		})
	}
}

// undecodableObserver counts Undecodable reports.
type undecodableObserver struct {
	mu    sync.Mutex
	sites []string
}

func (o *undecodableObserver) IntakeRequest(string, string) {}
func (o *undecodableObserver) Enqueued(time.Duration)       {}
func (o *undecodableObserver) Undecodable(site string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sites = append(o.sites, site)
}

func (o *undecodableObserver) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.sites)
}

// TestDropInUndecodable: bytes that are not text in the charset the
// request declares (or the site's) never cost the lead. It is kept, read as
// the charset it looks like (or with U+FFFD where UTF-8 is damaged), and
// the answer, in the add-failure shape and in that charset, says so; the
// request is counted and logged without the visitor's data.
func TestDropInUndecodable(t *testing.T) {
	t.Parallel()
	obs := &undecodableObserver{}
	e := newEnvWith(t, nil, func(_ *env, o *Options) { o.Observer = obs })
	const title = "Андреев Иван"
	tests := []struct {
		name, path, query string
		title             string // enqueued
		charset           string // of the answer
		inAnswer          string
		refused           bool
	}{
		{"windows-1251 sent as UTF-8", "/developer/v1/leads", form("title", intaketest.Encode(t, charmap.Windows1251, title), "phone", "+79001234567"),
			title, "windows-1251", "the form's text is not valid utf-8 (in title); it looks like windows-1251", false},
		{"KOI8-R sent as UTF-8", "/developer/v1/leads", form("title", intaketest.Encode(t, charmap.KOI8R, title), "phone", "+79001234568"),
			title, "koi8-r", "it looks like koi8-r", false},
		{"UTF-8 cut inside a character", "/developer/v1/leads", form("title", title[:len(title)-1], "phone", "+79001234569"),
			strings.TrimSuffix(title, "н") + "\uFFFD", "utf-8", "was kept with those bytes shown as \uFFFD", false},
		{"v2 answers in its shape", "/developer/v2/lead", form("title", intaketest.Encode(t, charmap.Windows1251, title), "phone", "+79001234570"),
			title, "windows-1251", `"result":"Error","error":{"code":1,`, false},
		{"refused for another reason: both said", "/developer/v1/leads", form("title", intaketest.Encode(t, charmap.Windows1251, title), "email", "not-mail"),
			"", "windows-1251", "title: not valid utf-8, read as windows-1251; email: not an e-mail address", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, httptest.NewRequest(http.MethodGet, tc.path+"?"+tc.query, nil))
			ct := rec.Header().Get("Content-Type")
			if !strings.HasSuffix(ct, "; charset="+tc.charset) || rec.Code != http.StatusOK {
				t.Fatalf("HTTP %d, Content-Type %q, want charset %s", rec.Code, ct, tc.charset)
			}
			body := rec.Body.String()
			if cs, _ := lookupCharset(tc.charset); cs.cm != nil {
				var err error
				if body, err = cs.cm.NewDecoder().String(body); err != nil {
					t.Fatal(err)
				}
			}
			if !strings.Contains(body, textAddFailed) || !strings.Contains(body, tc.inAnswer) {
				t.Errorf("answer = %s\nwant the add-failure shape with %q", body, tc.inAnswer)
			}
			if obs.count() != i+1 {
				t.Errorf("%d requests counted, want %d", obs.count(), i+1)
			}
			m := regexp.MustCompile(`lead (ld_[0-9a-f]{24}) was kept`).FindStringSubmatch(body)
			if tc.refused {
				if m != nil || rec.Header().Get(HeaderStatus) != "" {
					t.Errorf("refused lead answered as kept: %s %s", rec.Header().Get(HeaderStatus), body)
				}
				return
			}
			if m == nil || rec.Header().Get(HeaderStatus) != "202" {
				t.Fatalf("%s %q: %s, want the kept lead's id and 202", HeaderStatus, rec.Header().Get(HeaderStatus), body)
			}
			if l := e.enqueued(t, m[1]); l.Title != tc.title {
				t.Errorf("enqueued title %q, want %q", l.Title, tc.title)
			}
		})
	}
	if n := len(e.logs.FilterMessageSnippet("text not valid in its charset").All()); n != len(tests) {
		t.Errorf("%d log lines, want %d", n, len(tests))
	}
}

// TestCharsetEncodeJSON: an answer in a single-byte charset stays JSON; a
// character the charset lacks becomes a \u escape.
func TestCharsetEncodeJSON(t *testing.T) {
	t.Parallel()
	js := `{"text":"Ошибка … ✓ 😀"}`
	got := koi8rCharset.encodeJSON([]byte(js))
	want := intaketest.Encode(t, charmap.KOI8R, `{"text":"Ошибка `) + `\u2026 \u2713 \ud83d\ude00"}`
	if string(got) != want {
		t.Errorf("encodeJSON = %q, want %q", got, want)
	}
	if string(utf8Charset.encodeJSON([]byte(js))) != js {
		t.Error("UTF-8 changed")
	}
}

func TestGuessCharset(t *testing.T) {
	t.Parallel()
	const text = "Здравствуйте, хочу заказать доставку"
	for _, cs := range legacyCharsets {
		if got := guessCharset(intaketest.Encode(t, cs.cm, text)); got.name != cs.name {
			t.Errorf("text in %s guessed as %s", cs.name, got.name)
		}
	}
}
