package ctl

import (
	"strings"
	"testing"
)

// TestUsageListsEveryCommand: the dispatch table and Usage name the same
// commands, so a command added to one is not missing from the other.
func TestUsageListsEveryCommand(t *testing.T) {
	t.Parallel()
	for name := range commands {
		if !strings.Contains(Usage, "\n  "+name+" ") && !strings.Contains(Usage, "\n  "+name+"\n") {
			t.Errorf("Usage does not list %q", name)
		}
	}
	for _, line := range strings.Split(Usage, "\n") {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
			continue
		}
		words := strings.Fields(line)
		name := words[0]
		if len(words) > 1 && isGroup(words[0]) {
			name += " " + words[1]
		}
		if _, ok := commands[name]; !ok {
			t.Errorf("Usage lists %q, which no command runs", name)
		}
	}
}
