package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHelpListsNoLab: the bench and the stand-alone simulator are commands
// of their own (tools/bench, tools/crmsim); the relay's help does not list
// them, and asking the relay for one is a usage error that names the tool.
func TestHelpListsNoLab(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}} {
		out, _, err := runOnce(t, nil, args...)
		if err != nil {
			t.Fatalf("leadrelay %v: %v", args, err)
		}
		for _, lab := range []string{"bench", "crmsim"} {
			if strings.Contains(out, lab) {
				t.Errorf("leadrelay %v lists %q:\n%s", args, lab, out)
			}
		}
	}
	tests := []struct{ cmd, tool string }{
		{"bench", "go run ./tools/bench"},
		{"crmsim", "go run ./tools/crmsim"},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			t.Parallel()
			_, _, err := runOnce(t, nil, tc.cmd, "-h")
			var ue *usageError
			if !errors.As(err, &ue) || exitCode(err) != 2 {
				t.Fatalf("leadrelay %s: %v (exit %d), want a usage error", tc.cmd, err, exitCode(err))
			}
			if !strings.Contains(err.Error(), tc.tool) {
				t.Errorf("leadrelay %s: %q does not name %q", tc.cmd, err, tc.tool)
			}
		})
	}
}

// TestRelayLinksNoLab: the relay binary links only what runs in
// production: none of the bench plot's gonum, x/image or PDF packages, and
// nothing under tools/. It asks the go tool, and skips without one.
func TestRelayLinksNoLab(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to list the relay's dependencies")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "list", "-deps", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []string{"gonum.org/", "golang.org/x/image", "codeberg.org/go-pdf/", "leadrelay/tools/"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(pkg, b) {
				t.Errorf("the relay links %s", pkg)
			}
		}
	}
}
