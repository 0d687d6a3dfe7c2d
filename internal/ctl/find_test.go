package ctl

import (
	"strings"
	"testing"
	"time"

	"leadrelay/lead"
)

// TestLeadFind: leads are found by e-mail (any case) and by phone digits,
// queued ones and dead ones alike.
func TestLeadFind(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	p := lead.NewPayload("shop", "k1", lead.Lead{Title: "Ann", Email: "Ann@Example.com", Phone: "+7 (900) 123-45-67"}, now)
	e.enqueue(t, p)
	e.enqueue(t, payload("shop", "other"))
	dead := e.putDead(t, "blog", "gone", time.Minute) // email gone@example.com
	tests := []struct {
		name string
		args []string
		want []string // ids
		code int
	}{
		{"email any case", []string{"--email", "ann@example.COM"}, []string{p.ID}, ExitOK},
		{"phone digits", []string{"--phone", "79001234567"}, []string{p.ID}, ExitOK},
		{"phone without country code", []string{"--phone", "900 123 45 67"}, []string{p.ID}, ExitOK},
		{"dead lead", []string{"--email", "gone@example.com"}, []string{dead}, ExitOK},
		{"nothing", []string{"--email", "nobody@example.com"}, nil, ExitNotFound},
		{"no criterion", nil, nil, ExitUsage},
		{"phone without digits", []string{"--phone", "call me"}, nil, ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := e.run(t, "", append([]string{"--json", "lead", "find"}, tc.args...)...)
			if ExitCode(err) != tc.code {
				t.Fatalf("exit %d (%v), want %d", ExitCode(err), err, tc.code)
			}
			if tc.code == ExitUsage {
				return
			}
			ans := decodeJSON[findAnswer](t, out)
			var got []string
			for _, l := range ans.Leads {
				got = append(got, l.ID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("found %v, want %v\n%s", got, tc.want, out)
			}
			if ans.Leads == nil {
				t.Error("leads is null, want []")
			}
		})
	}
}
