// Package runtest runs a command's run function in-process for a test, as
// its main would run it: the output captured safely while it runs, a
// bounded wait for the lines that say it is ready, and a bounded stop at
// cleanup. The relay (cmd/leadrelay), app.Run and the simulator's Run are
// tested this way.
//
//	c := runtest.Start(t, "crmsim", func(ctx context.Context, stdout, stderr io.Writer) error {
//		return crmsim.Run(ctx, args, stdout, stderr)
//	})
//	url := c.Await(t, 20*time.Second, listeningRE)[0][1]
package runtest

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"sync"
	"testing"
	"time"
)

// StopTimeout bounds how long Stop waits for a command to return.
const StopTimeout = 20 * time.Second

// Output is an io.Writer safe for a running command's concurrent writes
// and a test's reads. The zero value is empty and ready to use.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Func is a command's run function: it runs until ctx is done or it fails.
type Func func(ctx context.Context, stdout, stderr io.Writer) error

// Cmd is one command running in-process.
type Cmd struct {
	// Stdout and Stderr hold what the command wrote so far.
	Stdout, Stderr *Output

	name   string
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	ended  bool
	err    error
}

// Start runs fn in a goroutine; Stop, and t's cleanup, cancel its context
// and wait for it. name says which command in failure messages.
func Start(t testing.TB, name string, fn Func) *Cmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cmd{Stdout: &Output{}, Stderr: &Output{}, name: name, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- fn(ctx, c.Stdout, c.Stderr) }()
	t.Cleanup(func() { c.Stop(t) })
	return c
}

// Await polls Stdout until every pattern matches it and returns their
// submatches, in order. It fails t when the command returns first or
// nothing matched within d; the message shows what the command wrote.
func (c *Cmd) Await(t testing.TB, d time.Duration, patterns ...*regexp.Regexp) [][]string {
	t.Helper()
	m, err := c.AwaitOrEnd(t, d, patterns...)
	if err != nil {
		t.Fatalf("%s returned before it was ready: %v\n%s%s", c.name, err, c.Stdout, c.Stderr)
	}
	return m
}

// AwaitOrEnd is Await for a command that may refuse to start: it returns
// the submatches once every pattern matches, or the error the command
// returned before that. A command that returns nil before it is ready, or
// is not ready within d, fails t.
func (c *Cmd) AwaitOrEnd(t testing.TB, d time.Duration, patterns ...*regexp.Regexp) ([][]string, error) {
	t.Helper()
	deadline := time.After(d)
	for {
		if m := matchAll(c.Stdout.String(), patterns); m != nil {
			return m, nil
		}
		select {
		case err := <-c.done:
			c.end(err)
			if err == nil {
				t.Fatalf("%s returned nil before it was ready\n%s%s", c.name, c.Stdout, c.Stderr)
			}
			return nil, err
		case <-deadline:
			t.Fatalf("%s was not ready within %s\n%s%s", c.name, d, c.Stdout, c.Stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func matchAll(s string, patterns []*regexp.Regexp) [][]string {
	out := make([][]string, len(patterns))
	for i, re := range patterns {
		if out[i] = re.FindStringSubmatch(s); out[i] == nil {
			return nil
		}
	}
	return out
}

// Wait waits up to d for the command to return on its own and returns its
// error; it fails t when the command is still running after d.
func (c *Cmd) Wait(t testing.TB, d time.Duration) error {
	t.Helper()
	if ended, err := c.result(); ended {
		return err
	}
	select {
	case err := <-c.done:
		c.end(err)
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", c.name, d)
		return nil
	}
}

// Stop cancels the command and waits up to StopTimeout for it; an error it
// returns, or not returning in time, fails t. Stopping again does nothing.
func (c *Cmd) Stop(t testing.TB) {
	t.Helper()
	c.cancel()
	if ended, _ := c.result(); ended {
		return
	}
	select {
	case err := <-c.done:
		c.end(err)
		if err != nil {
			t.Errorf("%s returned %v", c.name, err)
		}
	case <-time.After(StopTimeout):
		c.end(nil)
		t.Errorf("%s did not stop within %s", c.name, StopTimeout)
	}
}

func (c *Cmd) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended, c.err = true, err
}

// result says whether the command returned, and its error.
func (c *Cmd) result() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended, c.err
}
