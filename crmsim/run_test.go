package crmsim

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/runtest"
)

// startRun runs Run with args through runtest.
func startRun(t *testing.T, args ...string) *runtest.Cmd {
	t.Helper()
	return runtest.Start(t, "crmsim", func(ctx context.Context, stdout, stderr io.Writer) error {
		return Run(ctx, args, stdout, stderr)
	})
}

func TestRun(t *testing.T) {
	t.Parallel()
	c := startRun(t, "--addr", "127.0.0.1:0", "--api", "v2", "--apikey", "s3cret-key", "--login", "boss@example.com", "--log-level", "debug", "--fatal-rate", "0")
	re := regexp.MustCompile(`crmsim listening on (http://127\.0\.0\.1:\d+) \(api=v2, login=boss@example.com\)`)
	url := c.Await(t, 5*time.Second, re)[0][1]
	a := postForm(t, url, PathV2, map[string][]string{"login": {"boss@example.com"}, "apikey": {"s3cret-key"}, "action": {"add"}, "title": {"x"}})
	if !strings.HasPrefix(a.body, `{"result":"Success","id":1}`) {
		t.Fatalf("add via Run: %s", a.body)
	}
	c.Stop(t)
	if out := c.Stdout.String() + c.Stderr.String(); strings.Contains(out, "s3cret-key") {
		t.Fatalf("key printed:\n%s", out)
	}
	if !strings.Contains(c.Stderr.String(), "crmsim request") {
		t.Errorf("debug request log missing:\n%s", c.Stderr)
	}
}

func TestRunDemoKeyWarning(t *testing.T) {
	t.Parallel()
	c := startRun(t, "--addr", "127.0.0.1:0")
	c.Await(t, 5*time.Second, regexp.MustCompile("listening"))
	c.Stop(t)
	if !strings.Contains(c.Stderr.String(), "demo key") || !strings.Contains(c.Stdout.String(), "api=both, login=admin@example.com") {
		t.Fatalf("stdout %q stderr %q", c.Stdout, c.Stderr)
	}
}

func TestRunBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--api", "v3"}, "--api"},
		{[]string{"--error-rate", "1.5"}, "--error-rate"},
		{[]string{"--error-rate", "lots"}, "error-rate"},
		{[]string{"--error-status", "502"}, "--error-status"},
		{[]string{"--latency", "soon"}, "latency"},
		{[]string{"--ambiguous-rate", "-1"}, "--ambiguous-rate"},
		{[]string{"--fatal-rate", "2"}, "--fatal-rate"},
		{[]string{"--rate-limit-rate", "9"}, "--rate-limit-rate"},
		{[]string{"--outage-mode", "maybe"}, "--outage-mode"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"extra"}, "extra"},
		{[]string{"--addr", "256.0.0.1:99999", "--apikey", "k"}, "--addr"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := Run(t.Context(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

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
