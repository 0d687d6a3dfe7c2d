package crmsim

import (
	"context"
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
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, append([]string{"--addr", "127.0.0.1:0", "--api", "v2", "--log-level", "info"}, tc.args...), &stdout, &stderr)
			}()
			if tc.wantErr != "" {
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("Run = %v, want an error with %q", err, tc.wantErr)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Run did not fail")
				}
				return
			}
			re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
			var url string
			waitFor(t, "the listening line", func() bool {
				if m := re.FindStringSubmatch(stdout.String()); m != nil {
					url = m[1]
				}
				return url != ""
			})
			a := postForm(t, url, PathV2, map[string][]string{"login": {"admin@example.com"}, "apikey": {"file-key-0123"}, "action": {"add"}, "title": {"x"}})
			if !strings.HasPrefix(a.body, `{"result":"Success"`) {
				t.Errorf("add with the file's key: %s", a.body)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(stderr.String(), "readable by every user"); got != tc.warn {
				t.Errorf("world-readable warning = %v, want %v:\n%s", got, tc.warn, stderr.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), "file-key-0123") {
				t.Error("key printed")
			}
		})
	}
}
