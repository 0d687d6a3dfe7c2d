package realcrm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// settings are the test's knobs, all read here from the environment.
type settings struct {
	url, login, apikey string
	db                 []string // command and arguments that run mysql on the CRM's database
	phpPIDFile         string
	phpStart           string
	prepend            string
	prefix             string
	drain              time.Duration
	logs               string // directory to keep the processes' logs in, "" = none
}

// loadSettings skips the test unless LEADRELAY_REAL_CRM_URL is set, and
// fails it when that is set but the rest is missing or the CRM is not on
// loopback.
func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{
		url:        os.Getenv("LEADRELAY_REAL_CRM_URL"),
		login:      os.Getenv("LEADRELAY_REAL_CRM_LOGIN"),
		apikey:     os.Getenv("LEADRELAY_REAL_CRM_APIKEY"),
		db:         strings.Fields(os.Getenv("LEADRELAY_REAL_CRM_DB")),
		phpPIDFile: os.Getenv("LEADRELAY_REAL_CRM_PHP_PIDFILE"),
		phpStart:   os.Getenv("LEADRELAY_REAL_CRM_PHP_START"),
		prepend:    os.Getenv("LEADRELAY_REAL_CRM_PREPEND"),
		prefix:     os.Getenv("LEADRELAY_REAL_CRM_PREFIX"),
		logs:       os.Getenv("LEADRELAY_REAL_CRM_LOGS"),
		drain:      20 * time.Minute,
	}
	if s.url == "" {
		t.Skip("realcrm: LEADRELAY_REAL_CRM_URL is not set; this test needs a real SalesMan CRM (see this package's doc)")
	}
	if s.prefix == "" {
		s.prefix = "app_"
	}
	var missing []string
	for _, v := range []struct{ name, val string }{
		{"LEADRELAY_REAL_CRM_LOGIN", s.login}, {"LEADRELAY_REAL_CRM_APIKEY", s.apikey},
		{"LEADRELAY_REAL_CRM_DB", strings.Join(s.db, " ")}, {"LEADRELAY_REAL_CRM_PHP_PIDFILE", s.phpPIDFile},
		{"LEADRELAY_REAL_CRM_PHP_START", s.phpStart}, {"LEADRELAY_REAL_CRM_PREPEND", s.prepend},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("realcrm: LEADRELAY_REAL_CRM_URL is set but %s are not", strings.Join(missing, ", "))
	}
	if d := os.Getenv("LEADRELAY_REAL_CRM_DRAIN"); d != "" {
		v, err := time.ParseDuration(d)
		if err != nil || v <= 0 {
			t.Fatalf("realcrm: LEADRELAY_REAL_CRM_DRAIN=%q is not a positive duration", d)
		}
		s.drain = v
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_]*$`).MatchString(s.prefix) {
		t.Fatalf("realcrm: LEADRELAY_REAL_CRM_PREFIX=%q must be letters, digits and _", s.prefix)
	}
	u, err := url.Parse(s.url)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		t.Fatalf("realcrm: LEADRELAY_REAL_CRM_URL=%q is not an http(s) URL", s.url)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		t.Fatalf("realcrm: the CRM must be on loopback (this test kills its PHP server), got host %q", u.Hostname())
	}
	return s
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/leadrelay once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "leadrelay-realcrm-bin")
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

// proc is a running leadrelay process; its output goes to a log file.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	url  string
}

var listenRE = regexp.MustCompile(`listening on (http://[0-9.:]+)`)

// startProc runs the binary and waits (bounded) until it prints its address.
// It is killed at cleanup.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stderr = logf
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("%s: start: %v", name, err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not exit after SIGKILL", name)
		}
	})
	urlc := make(chan string, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	select {
	case p.url = <-urlc:
	case <-p.done:
		t.Fatalf("%s exited before listening; log:\n%s", name, tail(p.log))
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not listen within 30s; log:\n%s", name, tail(p.log))
	}
	return p
}

// countLog counts the log lines that contain every one of subs.
func (p *proc) countLog(subs ...string) int {
	b, _ := os.ReadFile(p.log)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			n++
		}
	}
	return n
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// php controls the CRM's PHP server through its pid file and start script.
type php struct {
	s settings
}

// kill sends SIGKILL to the PHP server's process group and waits (bounded)
// until the leader is gone.
func (p php) kill(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(p.s.phpPIDFile)
	if err != nil {
		t.Fatalf("realcrm: read PHP pid file: %v", err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 1 {
		t.Fatalf("realcrm: PHP pid file %s holds %q", p.s.phpPIDFile, b)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("realcrm: kill -9 -%d: %v", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("realcrm: PHP server %d still there 10s after SIGKILL", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start runs the start script, with the prepend when slow is true. The
// script returns once the server answers (it waits at most 10 s itself).
func (p php) start(t *testing.T, slow bool) {
	t.Helper()
	cmd := exec.Command("bash", p.s.phpStart)
	cmd.Env = os.Environ()
	if slow {
		cmd.Env = append(cmd.Env, "CRM_HARNESS_PREPEND="+p.s.prepend)
	} else {
		cmd.Env = append(cmd.Env, "CRM_HARNESS_PREPEND=")
	}
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = cmd.CombinedOutput()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("realcrm: %s: %v\n%s", p.s.phpStart, err, out)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("realcrm: %s did not return within 60s", p.s.phpStart)
	}
}

// sql runs one query on the CRM's database and returns its rows, tab-split.
func sql(t *testing.T, s settings, query string) [][]string {
	t.Helper()
	args := append(append([]string(nil), s.db[1:]...), "-N", "-B", "--raw", "-e", query)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.db[0], args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("realcrm: mysql: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("realcrm: mysql: %v", err)
	}
	var rows [][]string
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}
