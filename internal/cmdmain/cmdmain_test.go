package cmdmain

import (
	"errors"
	"strings"
	"testing"
)

// TestReport: a failure is one line, the prefix before the error's text,
// and exits 1 unless the command maps its errors to other statuses.
func TestReport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, prefix string
		exitCode     func(error) int
		status       int
	}{
		{"no prefix, no mapping", "", nil, 1},
		{"prefixed", "rawworker: ", nil, 1},
		{"mapped", "leadrelay: ", func(error) int { return 3 }, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var w strings.Builder
			if got := report(&w, tc.prefix, errors.New("boom"), tc.exitCode); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			if want := tc.prefix + "boom\n"; w.String() != want {
				t.Errorf("wrote %q, want %q", w.String(), want)
			}
		})
	}
}
