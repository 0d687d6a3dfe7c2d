package crm_test

import (
	"testing"

	"leadrelay/crm"
	"leadrelay/crm/crmtest"
	"leadrelay/crmclient"
	"leadrelay/lead"
)

// TestFingerprint: a lead as sent matches the CRM lead as listed, after
// what the CRM does to stored text, and only that lead.
func TestFingerprint(t *testing.T) {
	t.Parallel()
	sent := lead.Lead{Email: "Ann@Example.com", Phone: "+7 900", Company: "Ann's «Co»", Description: "it's <b>\"quoted\"</b>\n  twice"}
	tests := []struct {
		name   string
		listed crmclient.ListContact
		same   bool
	}{
		{"as the CRM stores it", crmclient.ListContact{Email: "ann@example.com", Phone: "+7 900", Company: "Anns Co", Content: "its quoted twice"}, true},
		{"v2 form mode's quotes", crmclient.ListContact{Email: "ann@example.com", Phone: "+7 900", Company: "Ann&acute;s Co", Content: "it&acute;s ”quoted” twice"}, true},
		{"another phone", crmclient.ListContact{Email: "ann@example.com", Phone: "+7 901", Company: "Anns Co", Content: "its quoted twice"}, false},
		{"another text", crmclient.ListContact{Email: "ann@example.com", Phone: "+7 900", Company: "Anns Co", Content: "its quoted thrice"}, false},
	}
	c := crmtest.New(crmclient.V1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := crm.Fingerprint(crmclient.ListItem{ListContact: tc.listed}) == crm.SentFingerprint(c, crmclient.Lead{Lead: sent})
			if got != tc.same {
				t.Fatalf("match = %v, want %v", got, tc.same)
			}
		})
	}
}

// BenchmarkSentFingerprint is the content fingerprint every v2 delivery
// computes (crm/v2's SentHash): its cost is paid once per lead.
func BenchmarkSentFingerprint(b *testing.B) {
	c := crmtest.New(crmclient.V2)
	l := crmclient.Lead{Lead: lead.Lead{Title: "Ann", Email: "ann@example.com", Phone: "+7 900 123-45-67",
		Company: "ACME", Description: "Please call me back about the <b>offer</b> on the landing page."}}
	b.ReportAllocs()
	for b.Loop() {
		crm.SentFingerprint(c, l)
	}
}
