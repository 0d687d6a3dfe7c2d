package crmclient_test

import (
	"testing"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

func TestReplaceWide(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, standIn, want string }{
		{"plain text", "?", "plain text"},
		{"Привет 👋 мир 🌍", "\uFFFD", "Привет \uFFFD мир \uFFFD"},
		{"𠜎 rare CJK", "[?]", "[?] rare CJK"},
		{"3-byte € and ★ stay", "?", "3-byte € and ★ stay"},
		{"bad \xff byte 😀", "?", "bad \xff byte ?"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			if got := crmclient.ReplaceWide(tc.in, tc.standIn); got != tc.want {
				t.Errorf("ReplaceWide(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestWithIPLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ desc, ip, want string }{
		{"Call me", "203.0.113.7", "Call me\nIP: 203.0.113.7"},
		{"", "203.0.113.7", "IP: 203.0.113.7"},
		{"Call me", "", "Call me"},
		{"Call me\nIP: 203.0.113.7", "203.0.113.7", "Call me\nIP: 203.0.113.7"}, // a resend adds nothing
	}
	for _, tc := range tests {
		if got := crmclient.WithIPLine(tc.desc, tc.ip); got != tc.want {
			t.Errorf("WithIPLine(%q, %q) = %q, want %q", tc.desc, tc.ip, got, tc.want)
		}
	}
}

func TestDropUntagChars(t *testing.T) {
	t.Parallel()
	in := "O'Brien «Co» <b>\"q\"</b> a\\b `x`"
	if got, want := crmclient.DropUntagChars(in), "OBrien Co bq/b ab x"; got != want {
		t.Errorf("DropUntagChars(%q) = %q, want %q", in, got, want)
	}
}

// TestAddSanitizes: what reaches the CRM keeps the ip on v2 (as the
// description's last line) and shows where an emoji was, by default; both
// can be switched off.
func TestAddSanitizes(t *testing.T) {
	t.Parallel()
	l := crmclient.Lead{Lead: lead.Lead{Title: "Ann 😀", Description: "Call me 📞", IP: "203.0.113.7"}}
	tests := []struct {
		name      string
		opts      []crmclient.Option
		wantTitle string
		wantDesc  string
	}{
		{"v1 default: ip stays a field", []crmclient.Option{crmclient.WithAPIVersion(crmclient.V1)}, "Ann \uFFFD", "Call me \uFFFD"},
		{"v2 default", []crmclient.Option{crmclient.WithAPIVersion(crmclient.V2)}, "Ann \uFFFD", "Call me \uFFFD\nIP: 203.0.113.7"},
		{"v2 json default", []crmclient.Option{crmclient.WithAPIVersion(crmclient.V2), crmclient.WithJSON(true)}, "Ann \uFFFD", "Call me \uFFFD\nIP: 203.0.113.7"},
		{"v2, both off", []crmclient.Option{crmclient.WithAPIVersion(crmclient.V2), crmclient.WithSanitize(crmclient.Sanitize{})}, "Ann 😀", "Call me 📞"},
		{"v2, own stand-in", []crmclient.Option{crmclient.WithAPIVersion(crmclient.V2), crmclient.WithSanitize(crmclient.Sanitize{StandIn: "[emoji]"})}, "Ann [emoji]", "Call me [emoji]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim, c := newSim(t, tc.opts...)
			if c.Sent(l).Description != tc.wantDesc {
				t.Errorf("Sent = %q, want %q", c.Sent(l).Description, tc.wantDesc)
			}
			if _, err := c.Add(t.Context(), l); err != nil {
				t.Fatal(err)
			}
			got := sim.Leads()
			if len(got) != 1 || got[0].Title != tc.wantTitle || got[0].Description != tc.wantDesc {
				t.Fatalf("CRM holds %+v, want title %q, description %q", got, tc.wantTitle, tc.wantDesc)
			}
		})
	}
	if _, err := crmclient.New("http://crm", "a", "k", crmclient.WithSanitize(crmclient.Sanitize{StandIn: "🙂"})); err == nil {
		t.Error("a 4-byte stand-in was accepted")
	}
}
