package intake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

func TestPostLead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := `{"title":"Ann","email":"ann@example.com","utm_source":"google"}`

	rec := e.do(t, jsonPost(body, shopKey))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	firstBody := rec.Body.String()
	first := decodeBody(t, rec)
	id, _ := first["id"].(string)
	if !strings.HasPrefix(id, "ld_") || first["status"] != "queued" || first["duplicate"] != nil {
		t.Errorf("answer = %v", first)
	}
	if got := rec.Header().Get("Location"); got != "/v1/leads/"+id {
		t.Errorf("Location = %q", got)
	}

	// A keyless repeat, from a browser or not, is answered as the new lead
	// was: nobody learns that the same content was sent before.
	fromPage := jsonPost(body, shopKey)
	fromPage.Header.Set("Origin", "https://shop.example")
	for _, req := range []*http.Request{jsonPost(body, shopKey), fromPage} {
		if rec := e.do(t, req); rec.Code != http.StatusAccepted || rec.Body.String() != firstBody {
			t.Errorf("keyless repeat (Origin %q): %d %s, want the new lead's answer", req.Header.Get("Origin"), rec.Code, rec.Body)
		}
	}

	req := jsonPost(body, shopKey)
	req.Header.Set("Idempotency-Key", "order-42")
	if rec := e.do(t, req); rec.Code != http.StatusAccepted {
		t.Errorf("with Idempotency-Key: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(t, jsonPost(body, blogKey)); rec.Code != http.StatusAccepted {
		t.Errorf("same lead from another site: %d %s", rec.Code, rec.Body)
	}
	if got := e.queueSize(t); got != 3 {
		t.Errorf("tasks = %d, want 3", got)
	}

	t.Run("status", func(t *testing.T) {
		get := func(path, key string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			return e.do(t, req)
		}
		rec := get("/v1/leads/"+id, shopKey)
		st := decodeBody(t, rec)
		if rec.Code != http.StatusOK || st["id"] != id || st["status"] != "queued" || st["received_at"] == nil {
			t.Errorf("status: %d %v", rec.Code, st)
		}
		for _, absent := range []string{"crm_id", "attempts", "last_error", "delivered_at"} {
			if _, ok := st[absent]; ok {
				t.Errorf("empty %s not omitted: %v", absent, st)
			}
		}
		tests := []struct {
			name, path, key string
			want            int
		}{
			{"another site's lead", "/v1/leads/" + id, blogKey, http.StatusNotFound},
			{"unknown id", "/v1/leads/ld_000000000000000000000000", shopKey, http.StatusNotFound},
			{"garbage id", "/v1/leads/..%2F..%2Fetc", shopKey, http.StatusNotFound},
			{"wrong key", "/v1/leads/" + id, "nope-nope-nope-nope", http.StatusUnauthorized},
		}
		for _, tc := range tests {
			if rec := get(tc.path, tc.key); rec.Code != tc.want {
				t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
			}
		}
	})
}

func TestPostLeadErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	big := strings.Repeat("a", 10<<20)
	tests := []struct {
		name    string
		req     func() *http.Request
		status  int
		inBody  []string
		headers map[string]string
	}{
		{"no key", func() *http.Request { return jsonPost(`{"title":"Ann"}`, "") },
			401, []string{`"error"`}, map[string]string{"WWW-Authenticate": `Bearer realm="leadrelay"`}},
		{"wrong key", func() *http.Request { return jsonPost(`{"title":"Ann"}`, shopKey+"x") },
			401, []string{"unknown site key"}, map[string]string{"WWW-Authenticate": `Bearer realm="leadrelay", error="invalid_token"`}},
		{"basic auth", func() *http.Request {
			r := jsonPost(`{"title":"Ann"}`, "")
			r.SetBasicAuth("shop", shopKey)
			return r
		}, 401, nil, nil},
		{"10 MB body", func() *http.Request { return jsonPost(big, shopKey) }, 413, []string{"64 KiB"}, nil},
		{"10 MB chunked body", func() *http.Request {
			r := jsonPost("", shopKey)
			r.Body, r.ContentLength = nopCloser{hidden{strings.NewReader(big)}}, -1
			return r
		}, 413, []string{"64 KiB"}, nil},
		{"text/plain", annWith("Content-Type", "text/plain"), 415, nil, nil},
		{"no content type", annWith("Content-Type", ""), 415, nil, nil},
		{"latin1 charset", annWith("Content-Type", "application/json; charset=latin1"), 415, nil, nil},
		{"utf-8 charset", annWith("Content-Type", "application/json; charset=UTF-8"), 202, nil, nil},
		{"unknown fields", func() *http.Request { return jsonPost(`{"title":"Ann","name":"x","id":"5"}`, shopKey) },
			400, []string{`"field":"name","problem":"unknown field"`, `"field":"id"`}, nil},
		{"number for title", func() *http.Request { return jsonPost(`{"title":5,"email":"ann@example.com"}`, shopKey) },
			400, []string{`"field":"title","problem":"must be a string, not a number"`}, nil},
		{"duplicate key", func() *http.Request { return jsonPost(`{"title":"Ann","title":"Bob"}`, shopKey) },
			400, []string{`"field":"title","problem":"appears more than once"`}, nil},
		{"nested object", func() *http.Request { return jsonPost(`{"title":{"first":"Ann"}}`, shopKey) },
			400, []string{`"field":"title","problem":"must be a string, not an object"`}, nil},
		{"array", func() *http.Request { return jsonPost(`{"phone":["1","2"],"title":"Ann"}`, shopKey) },
			400, []string{`"field":"phone"`}, nil},
		{"invalid UTF-8", func() *http.Request { return jsonPost("{\"title\":\"A\xffnn\"}", shopKey) },
			400, []string{`"field":"title","problem":"not valid UTF-8"`}, nil},
		{"empty body", func() *http.Request { return jsonPost("", shopKey) }, 400, []string{"empty body"}, nil},
		{"trailing garbage", func() *http.Request { return jsonPost(`{"title":"Ann"} x`, shopKey) }, 400, []string{"after the JSON object"}, nil},
		{"second object", func() *http.Request { return jsonPost(`{"title":"Ann"}{}`, shopKey) }, 400, []string{"after the JSON object"}, nil},
		{"not an object", func() *http.Request { return jsonPost(`["Ann"]`, shopKey) }, 400, []string{"JSON object"}, nil},
		{"truncated", func() *http.Request { return jsonPost(`{"title":"Ann"`, shopKey) }, 400, []string{"malformed JSON"}, nil},
		{"every bad field", func() *http.Request { return jsonPost(`{"email":"nope","ip":"`+strings.Repeat("1", 50)+`"}`, shopKey) },
			400, []string{`"error":"invalid lead"`, `"field":"ip"`, `"field":"email"`}, nil},
		{"long Idempotency-Key", annWith("Idempotency-Key", strings.Repeat("k", 201)), 400, []string{"Idempotency-Key"}, nil},
		{"non-ASCII Idempotency-Key", annWith("Idempotency-Key", "ключ"), 400, []string{"printable ASCII"}, nil},
		{"GET on collection", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/v1/leads", nil) },
			405, nil, map[string]string{"Allow": "POST"}},
		{"DELETE a lead", func() *http.Request { return httptest.NewRequest(http.MethodDelete, "/v1/leads/ld_1", nil) },
			405, nil, map[string]string{"Allow": "GET, HEAD"}},
		{"unknown path", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/v2/leads", nil) }, 404, nil, nil},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := e.do(t, tc.req())
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			m := decodeBody(t, rec)
			if tc.status >= 400 && m["error"] == nil {
				t.Errorf("no error in %v", m)
			}
			for _, s := range tc.inBody {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("answer %s lacks %s", rec.Body, s)
				}
			}
			for k, v := range tc.headers {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	t.Cleanup(func() {
		if got := e.queueSize(t); got != 1 { // only the utf-8 charset case is valid
			t.Errorf("tasks = %d, want 1", got)
		}
	})
}

// annWith is a valid JSON lead of shop's whose header name is value, or
// which lacks it when value is "".
func annWith(name, value string) func() *http.Request {
	return func() *http.Request {
		r := jsonPost(`{"title":"Ann"}`, shopKey)
		if value == "" {
			r.Header.Del(name)
		} else {
			r.Header.Set(name, value)
		}
		return r
	}
}

type nopCloser struct{ hidden }

func (nopCloser) Close() error { return nil }

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

// TestJSONNotHTMLEscaped: JSON answers say <, > and & as they are; only the
// v1 drop-in, labelled text/html like the CRM's, keeps escaping them.
func TestJSONNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rec := e.do(t, jsonPost(`{"title":"Ann"}`, ""))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Bearer <site key>") || strings.Contains(rec.Body.String(), `\u003c`) {
		t.Errorf("401 = %d %s, want the text with <site key> unescaped", rec.Code, rec.Body)
	}
	rec = e.do(t, v2Get("login=shop&apikey="+url.QueryEscape(shopKey)+"&action=add&email=a<b>@x"))
	if strings.Contains(rec.Body.String(), `\u003c`) {
		t.Errorf("v2 drop-in (application/json) escapes HTML: %s", rec.Body)
	}
}

// TestRedisDown: with Redis gone, both surfaces answer 503 with Retry-After
// and nothing is acknowledged.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	e := newEnv(t, rdb)
	if rec := e.do(t, jsonPost(`{"title":"Ann"}`, shopKey)); rec.Code != http.StatusAccepted {
		t.Fatalf("before the outage: %d %s", rec.Code, rec.Body)
	}
	s.Stop()
	tests := []struct {
		name string
		req  *http.Request
		ct   string
	}{
		{"json api", jsonPost(`{"title":"Bob"}`, shopKey), "application/json; charset=utf-8"},
		{"batch", batchPost(`{"leads":[{"lead":{"title":"Bob"}}]}`, shopKey), "application/json; charset=utf-8"},
		{"status", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/v1/leads/ld_000000000000000000000000", nil)
			r.Header.Set("Authorization", "Bearer "+shopKey)
			return r
		}(), "application/json; charset=utf-8"},
		{"drop-in", httptest.NewRequest(http.MethodGet, "/developer/v1/leads?login=shop&apikey="+shopKey+"&action=add&title=Bob", nil), "text/html; charset=utf-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, tc.req)
			if apiStatus(rec) != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" || rec.Header().Get("Content-Type") != tc.ct {
				t.Errorf("%d Retry-After %q Content-Type %q: %s", apiStatus(rec), rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"), rec.Body)
			}
			if m := decodeBody(t, rec); m["error"] == nil {
				t.Errorf("no error in %v", m)
			}
		})
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rec := e.do(t, jsonPost(`{"title":"Ann","email":"ann@example.com"}`, shopKey))
	id := decodeBody(t, rec)["id"]
	e.do(t, jsonPost(`{"title":"Ann"}`, "bad-key-bad-key-bad"))
	var got []string
	for _, entry := range e.logs.FilterMessage("intake request").All() {
		c := entry.ContextMap()
		got = append(got, fmt.Sprintf("%v %v %v %v", c["status"], c["site"], c["lead_id"] == id, c["outcome"]))
	}
	want := "202 shop true accepted|401  false unauthorized"
	if strings.Join(got, "|") != want {
		t.Errorf("log lines = %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestNewHTTPServer(t *testing.T) {
	t.Parallel()
	s := NewHTTPServer(":0", http.NotFoundHandler())
	if s.ReadHeaderTimeout != ReadHeaderTimeout || s.ReadTimeout != ReadTimeout || s.WriteTimeout != WriteTimeout ||
		s.IdleTimeout != IdleTimeout || s.MaxHeaderBytes != 16<<10 || s.Handler == nil {
		t.Errorf("server = %+v", s)
	}
}

// TestTargetedBlock is issue 18's finding 2 (b): junk sent under
// Idempotency-Key "sha256:<digest of a victim's lead>" got 202, and the
// victim's real lead, sent without a key, then got 422. Keys in the
// relay's namespace are refused now, with a 400 that says why, in the
// JSON API and in a batch, and the victim's lead is accepted.
func TestTargetedBlock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	victim := lead.Lead{Title: "Ann", Phone: "+7 900 123-45-67"}
	victim.Normalize()
	d := victim.Digest()
	for _, key := range []string{d.Key(), lead.KeylessPrefix + string(d)} {
		req := jsonPost(`{"title":"junk","phone":"+1 555 0100"}`, shopKey)
		req.Header.Set("Idempotency-Key", key)
		if rec := e.do(t, req); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "may not start with") {
			t.Errorf("junk under %.12s…: %d %s, want 400 naming the reserved prefix", key, rec.Code, rec.Body)
		}
		batch := httptest.NewRequest(http.MethodPost, "/v1/leads/batch",
			strings.NewReader(`{"leads":[{"idempotency_key":"`+key+`","lead":{"title":"junk"}}]}`))
		batch.Header.Set("Content-Type", "application/json")
		batch.Header.Set("Authorization", "Bearer "+shopKey)
		if rec := e.do(t, batch); !strings.Contains(rec.Body.String(), `"http_status":400`) {
			t.Errorf("junk in a batch under %.12s…: %d %s, want the lead refused with 400", key, rec.Code, rec.Body)
		}
	}
	rec := e.do(t, jsonPost(`{"title":"Ann","phone":"+7 900 123-45-67"}`, shopKey))
	if rec.Code != http.StatusAccepted {
		t.Errorf("the victim's lead: %d %s, want 202", rec.Code, rec.Body)
	}
}
