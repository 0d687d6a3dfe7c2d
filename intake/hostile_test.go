package intake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"leadrelay/lead"
)

// TestHostileInputs is issue 5's table of hostile inputs, for the rows
// TestPostLeadErrors, TestDropInAnswers and TestDecodeJSON do not already
// cover. Each is refused with a 4xx or accepted as data, exactly as sent
// (after Normalize); after each row the queue holds one more task or none,
// so nothing is half-enqueued.
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	shop := "login=shop&apikey=" + url.QueryEscape(shopKey) + "&action=add"
	many := func(n int, pair func(i int) string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(pair(i))
		}
		return b.String()
	}
	injected := lead.Lead{Title: "a  X-Evil: 1", Email: "x@example.com"}
	sqlHTML := lead.Lead{
		Title:       `Robert'); DROP TABLE leads;--`,
		Company:     `<script>alert(document.cookie)</script>`,
		Description: "<img src=x onerror=alert(1)>\n' OR '1'='1\n%00 ${jndi:ldap://x} {{7*7}}",
	}
	tests := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		status int        // wanted status; 200 on the drop-in is read from the body
		want   *lead.Lead // the enqueued lead, before its site line; nil = nothing enqueued
	}{
		// Header injection: a field is data; control characters go, and
		// nothing reaches a response header.
		{"CRLF in a JSON field", func(*testing.T) *http.Request {
			return jsonPost(`{"title":"a\r\nX-Evil: 1","email":"x@example.com"}`, shopKey)
		}, 202, &injected},
		{"CRLF in a drop-in field", func(*testing.T) *http.Request {
			return dropGet(shop + "&title=a%0D%0AX-Evil%3A+1&email=y%40example.com")
		}, 200, &lead.Lead{Title: "a  X-Evil: 1", Email: "y@example.com"}},
		{"CRLF in Idempotency-Key", func(*testing.T) *http.Request {
			r := jsonPost(`{"title":"Ann"}`, shopKey)
			r.Header.Set("Idempotency-Key", "k\r\nX-Evil: 1")
			return r
		}, 400, nil},
		{"SQL and HTML as JSON", func(t *testing.T) *http.Request {
			return jsonPost(mustJSON(t, sqlHTML), shopKey)
		}, 202, &sqlHTML},
		{"SQL and HTML as a drop-in form", func(*testing.T) *http.Request {
			return dropPost(shop + "&title=" + url.QueryEscape(sqlHTML.Title+"!") + "&company=" + url.QueryEscape(sqlHTML.Company) +
				"&description=" + url.QueryEscape(sqlHTML.Description))
		}, 200, &lead.Lead{Title: sqlHTML.Title + "!", Company: sqlHTML.Company, Description: sqlHTML.Description}},
		{"IPv6 ip", func(*testing.T) *http.Request { return jsonPost(`{"title":"Ann","ip":"2001:db8::1"}`, shopKey) },
			202, &lead.Lead{Title: "Ann", IP: "2001:db8::1"}},
		{"longest IPv6 ip", func(*testing.T) *http.Request {
			return dropGet(shop + "&title=Ann&ip=ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
		}, 200, &lead.Lead{Title: "Ann", IP: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"}},
		{"lone surrogate escape", func(*testing.T) *http.Request { return jsonPost(`{"title":"A\ud800nn"}`, shopKey) },
			202, &lead.Lead{Title: "A\uFFFDnn"}},
		{"NUL and BOM", func(*testing.T) *http.Request { return jsonPost(`{"title":"\ufeffA\u0000nn"}`, shopKey) },
			202, &lead.Lead{Title: "Ann"}},
		// Not UTF-8, and no UTF-8 in it: kept, read as the charset it looks
		// like (KOI8-R: ю is a lower-case letter there), and said so.
		{"invalid UTF-8 in a drop-in form body", func(*testing.T) *http.Request { return dropPost(shop + "&title=%C0%AF") }, 202,
			&lead.Lead{Title: "ю╞"}},
		// Nesting and size.
		{"30k nested arrays in a field", func(*testing.T) *http.Request {
			return jsonPost(`{"title":`+strings.Repeat("[", 30000)+strings.Repeat("]", 30000)+`}`, shopKey)
		}, 400, nil},
		{"60k nested arrays as the body", func(*testing.T) *http.Request {
			return jsonPost(strings.Repeat("[", 60000), shopKey)
		}, 400, nil},
		{"100k nested arrays", func(*testing.T) *http.Request {
			return jsonPost(`{"title":`+strings.Repeat("[", 100000)+`}`, shopKey)
		}, 413, nil},
		{"10k nested objects", func(*testing.T) *http.Request {
			return jsonPost(strings.Repeat(`{"a":`, 10000)+`1`+strings.Repeat("}", 10000), shopKey)
		}, 400, nil},
		{"5000 unknown JSON fields", func(*testing.T) *http.Request {
			return jsonPost(`{"title":"Ann"`+many(5000, func(i int) string { return fmt.Sprintf(`,"f%d":""`, i) })+`}`, shopKey)
		}, 400, nil},
		{"4000 repeated JSON fields", func(*testing.T) *http.Request {
			return jsonPost(`{"title":"Ann"`+strings.Repeat(`,"title":"Ann"`, 4000)+`}`, shopKey)
		}, 400, nil},
		{"form with 10k params", func(*testing.T) *http.Request {
			return dropPost(shop + "&title=Many" + many(10000, func(i int) string { return fmt.Sprintf("&%x=", i) }))
		}, 200, &lead.Lead{Title: "Many"}},
		{"form with 10k repeats of a field", func(*testing.T) *http.Request {
			return dropPost(shop + strings.Repeat("&title=x", 6000) + "&title=Last")
		}, 200, &lead.Lead{Title: "Last"}},
		{"multipart with 1100 parts", func(t *testing.T) *http.Request {
			// Over mime/multipart's default cap of 1000 parts, under 64 KiB.
			body := strings.Repeat("--B\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\n\r\n", 1100) + "--B--\r\n"
			r := dropPost(body)
			r.Header.Set("Content-Type", "multipart/form-data; boundary=B")
			return r
		}, 400, nil},
		{"10 MB chunked drop-in form", func(*testing.T) *http.Request {
			r := dropPost("")
			r.Body, r.ContentLength = nopCloser{hidden{strings.NewReader(shop + "&title=" + strings.Repeat("a", 10<<20))}}, -1
			return r
		}, 413, nil},
		// No 10 MB query: NewHTTPServer's MaxHeaderBytes (16 KiB) refuses
		// the request line before intake sees it.
		{"60 KiB drop-in query", func(*testing.T) *http.Request { return dropGet(shop + "&title=" + strings.Repeat("a", 60<<10)) }, 200, nil},
		// Empty requests.
		{"empty drop-in GET", func(*testing.T) *http.Request { return dropGet("") }, 200, nil},
		{"empty drop-in POST", func(*testing.T) *http.Request { return dropPost("") }, 200, nil},
		{"empty JSON object", func(*testing.T) *http.Request { return jsonPost(`{}`, shopKey) }, 400, nil},
		{"JSON null", func(*testing.T) *http.Request { return jsonPost(`null`, shopKey) }, 400, nil},
		{"whitespace body", func(*testing.T) *http.Request { return jsonPost(" \r\n\t", shopKey) }, 400, nil},
	}
	for _, tc := range tests { // in sequence: each row checks the queue
		t.Run(tc.name, func(t *testing.T) {
			before := e.queueSize(t)
			rec := e.do(t, tc.req(t))
			if apiStatus(rec) != tc.status {
				t.Fatalf("status %d, want %d: %.300s", apiStatus(rec), tc.status, rec.Body)
			}
			for k := range rec.Header() {
				if strings.Contains(strings.ToLower(k), "evil") {
					t.Errorf("header injected: %v", rec.Header())
				}
			}
			id := acceptedID(t, rec)
			if id == "" {
				if m := keptRE.FindStringSubmatch(rec.Body.String()); m != nil {
					id = m[1]
				} else if m := decodeBody(t, rec); m["error"] == nil && m["Error"] == nil {
					t.Errorf("refusal without an error: %.300s", rec.Body)
				}
			}
			after := e.queueSize(t)
			if tc.want == nil {
				if id != "" || after != before {
					t.Fatalf("enqueued (tasks %d → %d): %.300s", before, after, rec.Body)
				}
				return
			}
			if id == "" || after != before+1 {
				t.Fatalf("not accepted (tasks %d → %d): %.300s", before, after, rec.Body)
			}
			lead.DefaultAttribution.Apply(tc.want, "shop")
			if got := e.enqueued(t, id); got != *tc.want {
				t.Errorf("enqueued %+v\nwant     %+v", got, *tc.want)
			}
		})
	}
}

// keptRE finds the id of a lead kept though its text was not valid in
// its charset (the answer is the add-failure shape).
var keptRE = regexp.MustCompile(`lead (ld_[0-9a-f]{24}) was kept`)

func mustJSON(t *testing.T, l lead.Lead) string {
	t.Helper()
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
