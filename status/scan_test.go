package status

import (
	"errors"
	"testing"

	"leadrelay/lead"
)

// TestQuery: a search matches an e-mail in any case and a phone by its
// digits, a long enough tail of them too; a query of nothing, or of a
// phone of fewer than 3 digits, is refused.
func TestQuery(t *testing.T) {
	t.Parallel()
	ann := lead.Lead{Email: "Ann@Example.org", Phone: "+7 (900) 123-45-67"}
	tests := []struct {
		name  string
		q     Query
		match bool
	}{
		{"e-mail, other case and spaces", Query{Email: " ann@example.org "}, true},
		{"another e-mail", Query{Email: "bob@example.org"}, false},
		{"phone, other punctuation", Query{Phone: "79001234567"}, true},
		{"phone without country code: its last 7+ digits", Query{Phone: "900 123 45 67"}, true},
		{"a short tail is not enough", Query{Phone: "4567"}, false},
		{"both must match", Query{Email: "ann@example.org", Phone: "111111111"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.q.Check(); err != nil {
				t.Fatalf("check(%+v) = %v", tc.q, err)
			}
			if got := tc.q.Matches(ann); got != tc.match {
				t.Errorf("%+v matches %+v = %v, want %v", tc.q, ann, got, tc.match)
			}
		})
	}
	for _, q := range []Query{{}, {Email: "  "}, {Phone: "+7-"}} {
		if err := q.Check(); !errors.Is(err, ErrQuery) {
			t.Errorf("check(%+v) = %v, want ErrQuery", q, err)
		}
	}
}
