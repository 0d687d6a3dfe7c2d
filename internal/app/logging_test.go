package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleLogsColourOnlyOnATerminal: console logs to a file or a pipe
// carry no ANSI escape codes.
func TestConsoleLogsColourOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, nil) // demo: console format
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var buf bytes.Buffer
	for _, w := range []interface{ Write([]byte) (int, error) }{f, &buf} {
		log := NewLogger(cfg, w)
		log.Warn("redirected")
		_ = log.Sync()
	}
	b, _ := os.ReadFile(f.Name())
	for name, out := range map[string]string{"file": string(b), "buffer": buf.String()} {
		if !strings.Contains(out, "WARN") || strings.Contains(out, "\x1b[") {
			t.Errorf("%s log = %q, want WARN without escape codes", name, out)
		}
	}
}
