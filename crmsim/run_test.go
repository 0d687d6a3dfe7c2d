package crmsim

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--addr", "127.0.0.1:0", "--api", "v2", "--apikey", "s3cret-key", "--login", "boss@example.com", "--log-level", "debug", "--fatal-rate", "0"}, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`crmsim listening on (http://127\.0\.0\.1:\d+) \(api=v2, login=boss@example.com\)`)
	var url string
	waitFor(t, "the listening line", func() bool {
		m := re.FindStringSubmatch(stdout.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	a := postForm(t, url, PathV2, map[string][]string{"login": {"boss@example.com"}, "apikey": {"s3cret-key"}, "action": {"add"}, "title": {"x"}})
	if !strings.HasPrefix(a.body, `{"result":"Success","id":1}`) {
		t.Fatalf("add via Run: %s", a.body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on ctx cancel")
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "s3cret-key") {
		t.Fatalf("key printed:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "crmsim request") {
		t.Errorf("debug request log missing:\n%s", stderr.String())
	}
}

func TestRunDemoKeyWarning(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"--addr", "127.0.0.1:0"}, &stdout, &stderr) }()
	waitFor(t, "start", func() bool { return strings.Contains(stdout.String(), "listening") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "demo key") || !strings.Contains(stdout.String(), "api=both, login=admin@example.com") {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
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
			err := Run(context.Background(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
