package realcrm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
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
