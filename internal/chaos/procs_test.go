package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/leadrelay once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "leadrelay-chaos-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "leadrelay")
		out, err := exec.Command("go", "build", "-o", binPath, "leadrelay/cmd/leadrelay").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is one running leadrelay process whose output goes to a log file.
type proc struct {
	name string
	args []string
	env  []string
	log  string
	t    *testing.T

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	url  string
}

var listenRE = regexp.MustCompile(`listening on (http://[0-9.:]+)`)

// startProc runs the binary with args and env and waits (bounded) until it
// prints the address it listens on.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, args: args, env: env, log: filepath.Join(t.TempDir(), name+".log"), t: t}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *proc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(binary(p.t), p.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, p.env...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("%s: start: %v", p.name, err)
	}
	done := make(chan struct{})
	urlc := make(chan string, 1)
	go func() {
		defer logf.Close() // the child holds its own copy for stderr
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case u := <-urlc:
		p.mu.Lock()
		p.cmd, p.done, p.url = cmd, done, u
		p.mu.Unlock()
	case <-done:
		p.t.Fatalf("%s exited before listening; log:\n%s", p.name, tail(p.log))
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		p.t.Fatalf("%s did not listen within 30s; log:\n%s", p.name, tail(p.log))
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s did not exit after SIGKILL", p.name)
	}
}

// restart kills the process and starts it again with the same settings.
func (p *proc) restart() {
	p.kill()
	p.start()
}

func (p *proc) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.url
}

// countLog counts the log lines of the process that contain every one of subs.
func (p *proc) countLog(subs ...string) int {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// grepLog returns up to max log lines of the process that contain sub.
func (p *proc) grepLog(sub string, max int) []string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, sub) && len(out) < max {
			out = append(out, line)
		}
	}
	return out
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitFor polls cond every interval until it holds or the deadline passes.
func waitFor(ctx context.Context, d, interval time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
	}
}
