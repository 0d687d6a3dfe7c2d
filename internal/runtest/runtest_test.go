package runtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"testing"
	"time"
)

func TestCmdReadyThenStopped(t *testing.T) {
	t.Parallel()
	c := Start(t, "cmd", func(ctx context.Context, stdout, stderr io.Writer) error {
		fmt.Fprintln(stderr, "starting")
		fmt.Fprintln(stdout, "listening on http://127.0.0.1:1234")
		<-ctx.Done()
		return nil
	})
	m := c.Await(t, 5*time.Second, regexp.MustCompile(`listening on (\S+)`), regexp.MustCompile(`http`))
	if m[0][1] != "http://127.0.0.1:1234" || m[1][0] != "http" {
		t.Fatalf("Await = %q", m)
	}
	c.Stop(t)
	c.Stop(t) // again: nothing
	if c.Stderr.String() != "starting\n" {
		t.Errorf("Stderr = %q", c.Stderr)
	}
}

func TestCmdFailsBeforeReady(t *testing.T) {
	t.Parallel()
	bad := errors.New("bad flag")
	c := Start(t, "cmd", func(context.Context, io.Writer, io.Writer) error { return bad })
	if m, err := c.AwaitOrEnd(t, 5*time.Second, regexp.MustCompile(`listening`)); m != nil || !errors.Is(err, bad) {
		t.Fatalf("AwaitOrEnd = %q, %v; want the command's error", m, err)
	}
	if err := c.Wait(t, time.Second); !errors.Is(err, bad) {
		t.Fatalf("Wait = %v, want the command's error", err)
	}
}
