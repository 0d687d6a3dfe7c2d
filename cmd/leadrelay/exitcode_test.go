package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/redistest"
)

// runMainEnv, set in a child's environment, makes the test binary run
// main itself: the child is the leadrelay binary, exit code included.
const runMainEnv = "GO_WANT_LEADRELAY_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBinaryExitCodes: the binary exits with the codes README promises
// scripts: 3 for a lead that is not found, 2 for a wrong command line
// (issue 19.5: under `go run`, which exits 1 and prints "exit status 3",
// not found looked like a failure; README now says to build the binary).
func TestBinaryExitCodes(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"version", []string{"version"}, 0, ""},
		{"lead not found", []string{"ctl", "lead", "status", "ld_none"}, 3, "not found"},
		{"dead lead not found", []string{"ctl", "dead", "show", "ld_none"}, 3, "not found"},
		{"unknown ctl command", []string{"ctl", "frobnicate"}, 2, "unknown command"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], tc.args...)
			cmd.Env = []string{runMainEnv + "=1", "LEADRELAY_REDIS_URL=" + rds.URL()}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("leadrelay %v: exit %d, stderr %q; want exit %d with %q", tc.args, code, stderr.String(), tc.code, tc.stderr)
			}
		})
	}
}
