package ctl

import (
	"fmt"
	"strings"
	"testing"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

// TestClipStripsControls is a low finding: ctl crm info wrote terminal
// escape sequences taken from CRM data to the operator's terminal.
func TestClipStripsControls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Ann Lee", "Ann Lee"},
		{"clear screen", "Ann\x1b[2J\x1b[H Lee", "Ann[2J[H Lee"},
		{"window title (OSC)", "\x1b]0;pwned\x07Ann", "]0;pwnedAnn"},
		{"C1 CSI", "Ann\u009b31mLee", "Ann31mLee"},
		{"bidi override", "invoice\u202Efdp.exe", "invoicefdp.exe"},
		{"newlines and tabs", "a\nb\tc\r\nd", "a b c d"},
		{"backspace", "rm\b\b\bok", "rmok"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"non-Latin text", "Андреев 李", "Андреев 李"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := clip(tc.in, 200); got != tc.want {
				t.Errorf("clip(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestCRMInfoNoEscapes: the table of ctl crm info holds no control
// characters, whatever the CRM sent, field names (uids) included.
func TestCRMInfoNoEscapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id, err := e.crm.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "Evil\x1b]0;owned\x07", Email: "evil@example.com", Description: "hi\x1b[2J\x1b[1;1H\u009b0m", Company: "ACME\u202E"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := e.run(t, "", "crm", "info", fmt.Sprint(id))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "evil@example.com") {
		t.Fatalf("output lacks the lead:\n%s", out)
	}
	for _, r := range out {
		if r == '\n' || r == ' ' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202E' {
			t.Fatalf("output holds control character %U:\n%q", r, out)
		}
	}
}
