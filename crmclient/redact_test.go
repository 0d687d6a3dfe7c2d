package crmclient

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"leadrelay/lead"
)

// TestKeyStraddlingSnippetCut is finding M1: the CRM echoes the API key in
// its error text (leads.php puts it in SQL error messages), and a key that
// straddles the 200-byte snippet cut left its prefix behind when the body
// was cut before it was redacted.
func TestKeyStraddlingSnippetCut(t *testing.T) {
	t.Parallel()
	const key = "QX7secretSECRETsecret42"
	forms := []string{key, url.QueryEscape(key), url.QueryEscape(url.QueryEscape(key))}
	type tc struct {
		name   string
		status int
		offset int // where the key starts in the body
	}
	var tests []tc
	for _, status := range []int{200, 500} {
		for _, off := range []int{snippetLen - 20, snippetLen - 10, snippetLen - 4, snippetLen - 1} {
			tests = append(tests, tc{fmt.Sprintf("HTTP %d key at %d", status, off), status, off})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newStub(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(tt.status)
				body := "<b>Fatal error</b>: SQL " + strings.Repeat("x", tt.offset-len("<b>Fatal error</b>: SQL ")) +
					key + " in query; apikey='" + key + "'"
				_, _ = w.Write([]byte(body))
			})
			c, err := New(srv.URL, testLogin, key)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Add(t.Context(), Lead{Lead: lead.Lead{Title: "x"}})
			if err == nil {
				t.Fatal("want an error")
			}
			text := err.Error()
			for _, f := range forms {
				for n := 4; n <= len(f); n++ {
					if strings.Contains(text, f[:n]) {
						t.Fatalf("error keeps %d bytes of the key (form %q): %s", n, f, text)
					}
				}
			}
		})
	}
}
