package crmsim

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunAPIKeyFile is a low finding: crmsim took its key only on the
// command line, where every user of the host reads it in the process list.
// --apikey-file takes it from a file (a Docker secret).
func TestRunAPIKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := file("private", "file-key-0123\n", 0o600)
	open := file("open", "file-key-0123\n", 0o644)
	empty := file("empty", " \n", 0o600)
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" = it serves with the key from the file
		warn    bool
	}{
		{"private file", []string{"--apikey-file", private}, "", false},
		{"world-readable file", []string{"--apikey-file", open}, "", true},
		{"both", []string{"--apikey-file", private, "--apikey", "x"}, "both set", false},
		{"missing", []string{"--apikey-file", filepath.Join(dir, "nope")}, "--apikey-file", false},
		{"empty", []string{"--apikey-file", empty}, "is empty", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startRun(t, append([]string{"--addr", "127.0.0.1:0", "--api", "v2", "--log-level", "info"}, tc.args...)...)
			if tc.wantErr != "" {
				if err := c.Wait(t, 10*time.Second); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Run = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			url := c.Await(t, 5*time.Second, regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`))[0][1]
			a := postForm(t, url, PathV2, map[string][]string{"login": {"admin@example.com"}, "apikey": {"file-key-0123"}, "action": {"add"}, "title": {"x"}})
			if !strings.HasPrefix(a.body, `{"result":"Success"`) {
				t.Errorf("add with the file's key: %s", a.body)
			}
			c.Stop(t)
			if got := strings.Contains(c.Stderr.String(), "readable by every user"); got != tc.warn {
				t.Errorf("world-readable warning = %v, want %v:\n%s", got, tc.warn, c.Stderr)
			}
			if strings.Contains(c.Stdout.String()+c.Stderr.String(), "file-key-0123") {
				t.Error("key printed")
			}
		})
	}
}
