package deploy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"leadrelay/config"
)

// units are the systemd units under deploy/systemd, and the instances the
// tests verify of the worker's template: the first and the last one its
// port scheme allows.
var units = []struct{ file, verifyAs string }{
	{"leadrelay-intake.service", "leadrelay-intake.service"},
	{"leadrelay-worker@.service", "leadrelay-worker@1.service"},
	{"leadrelay-worker@.service", "leadrelay-worker@9.service"},
}

// unit is what the tests read of a unit file: each key's values in order
// (a key may repeat), comments and section headers left out.
type unit map[string][]string

func readUnit(t *testing.T, name string) unit {
	t.Helper()
	f, err := os.Open(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		// A line ending in a backslash goes on in the next, as systemd reads it.
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(sc.Text())
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not key=value", name, line)
		}
		u[k] = append(u[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// environment is the unit's Environment= lines as a map, with %i replaced
// by instance.
func (u unit) environment(instance string) map[string]string {
	env := map[string]string{}
	for _, line := range u["Environment"] {
		k, v, _ := strings.Cut(strings.ReplaceAll(line, "%i", instance), "=")
		env[k] = v
	}
	return env
}

// systemdAnalyze is the systemd-analyze program; the test skips without
// it, and fails under CI.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is not installed; CI must verify the units (apt-get install systemd)")
		}
		t.Skip("systemd-analyze not on PATH (apt-get install systemd)")
	}
	return bin
}

// unitRoot lays out a file system root for systemd-analyze --root: the
// host's own system units (so targets resolve), the units under test in
// /etc/systemd/system, and an executable where ExecStart points.
func unitRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	sys := "/usr/lib/systemd/system"
	if _, err := os.Stat(sys); err != nil {
		sys = "/lib/systemd/system"
	}
	libDir := filepath.Join(root, "usr/lib/systemd")
	if err := os.MkdirAll(libDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", sys, libDir).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v: %s", sys, err, out)
	}
	etc := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		b := readFile(t, filepath.Join("systemd", u.file))
		if err := os.WriteFile(filepath.Join(etc, u.file), b, 0o644); err != nil {
			t.Fatal(err)
		}
		// Every program a command runs (prefixes such as + dropped).
		unit := readUnit(t, u.file)
		for _, cmd := range append(append(unit["ExecStart"], unit["ExecStartPre"]...), unit["ExecReload"]...) {
			exe, _, _ := strings.Cut(strings.TrimLeft(cmd, "+-@!:"), " ")
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(exe)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, exe), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// TestSystemdVerify: systemd itself finds nothing wrong in the units (an
// unknown or misspelt key, a bad value: systemd-analyze verify prints them
// and still exits 0, so any output fails), and their hardening keeps
// systemd's exposure score at 2.0 or below ("OK").
func TestSystemdVerify(t *testing.T) {
	t.Parallel()
	bin := systemdAnalyze(t)
	root := unitRoot(t)
	for _, u := range units {
		t.Run(u.verifyAs, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(bin, "verify", "--man=no", "--root="+root, u.verifyAs).CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", u.verifyAs, err, out)
			}
			out, err = exec.Command(bin, "security", "--offline=yes", "--threshold=20", "--root="+root, u.verifyAs).CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v):\n%s", u.verifyAs, err, out)
			}
		})
	}
}

// TestSystemdHardening: the settings the deployment promises are in every
// unit, so that a later edit cannot drop one silently (verify accepts a
// unit without them).
func TestSystemdHardening(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "", "Restart": "on-failure",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallArchitectures": "native",
		"MemoryDenyWriteExecute": "yes", "SystemCallErrorNumber": "EPERM",
	}
	for _, name := range []string{"leadrelay-intake.service", "leadrelay-worker@.service"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := readUnit(t, name)
			for k, v := range want {
				if got := u[k]; len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if f := strings.Join(u["SystemCallFilter"], " "); !strings.Contains(f, "@system-service") || !strings.Contains(f, "~@privileged") {
				t.Errorf("SystemCallFilter %q: want @system-service without @privileged", f)
			}
			for _, k := range []string{"User", "Group"} {
				if u[k] != nil {
					t.Errorf("%s= is set: the unit runs as a dynamic user", k)
				}
			}
		})
	}
}

// TestSystemdStopTimeout: systemd waits for a graceful stop longer than
// LeadRelay's own bound on one, in every unit, so in-flight deliveries are
// finished or handed back before a SIGKILL.
func TestSystemdStopTimeout(t *testing.T) {
	t.Parallel()
	var def string
	for _, v := range config.Vars() {
		if v.Name == "LEADRELAY_SHUTDOWN_TIMEOUT" {
			def = v.Default
		}
	}
	for _, tc := range []struct{ unit, envFile string }{
		{"leadrelay-intake.service", "intake.env"},
		{"leadrelay-worker@.service", "worker.env"},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			t.Parallel()
			shutdown := envFile(t, tc.envFile)["LEADRELAY_SHUTDOWN_TIMEOUT"]
			if shutdown == "" {
				shutdown = def
			}
			d, err := time.ParseDuration(shutdown)
			if err != nil {
				t.Fatalf("LEADRELAY_SHUTDOWN_TIMEOUT %q: %v", shutdown, err)
			}
			stop := readUnit(t, tc.unit)["TimeoutStopSec"]
			if len(stop) != 1 {
				t.Fatalf("TimeoutStopSec = %q, want one", stop)
			}
			s, err := time.ParseDuration(stop[0])
			if err != nil {
				t.Fatalf("TimeoutStopSec %q: %v", stop[0], err)
			}
			if s < d+10*time.Second {
				t.Errorf("TimeoutStopSec %s leaves less than 10s over LEADRELAY_SHUTDOWN_TIMEOUT %s", s, d)
			}
		})
	}
}

// TestSystemdWorkerPorts: two instances of the worker's template on one
// host never share a port, with each other or with the intake, and each
// gives the config a valid address pair.
func TestSystemdWorkerPorts(t *testing.T) {
	t.Parallel()
	intake := envFile(t, "intake.env")
	worker := readUnit(t, "leadrelay-worker@.service")
	if shared := envFile(t, "worker.env"); shared["LEADRELAY_HTTP_ADDR"] != "" || shared["LEADRELAY_OPS_ADDR"] != "" {
		t.Fatal("worker.env sets a listen address: it would override every instance's own")
	}
	seen := map[string]string{intake["LEADRELAY_HTTP_ADDR"]: "intake", intake["LEADRELAY_OPS_ADDR"]: "intake ops"}
	for i := 1; i <= 9; i++ {
		instance := fmt.Sprint(i)
		env := worker.environment(instance)
		for _, k := range []string{"LEADRELAY_HTTP_ADDR", "LEADRELAY_OPS_ADDR"} {
			addr := env[k]
			if _, _, err := net.SplitHostPort(addr); err != nil || !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Errorf("worker@%s %s = %q: want a loopback host:port", instance, k, addr)
			}
			if other, dup := seen[addr]; dup {
				t.Errorf("worker@%s %s = %s, also %s's", instance, k, addr, other)
			}
			seen[addr] = "worker@" + instance
		}
		listeners := func(k string) string {
			if strings.HasSuffix(k, "_ADDR") {
				return env[k]
			}
			return ""
		}
		if _, err := config.Load(listeners); err != nil {
			t.Errorf("worker@%s listeners: %v", instance, err)
		}
	}
}

// envFile reads an EnvironmentFile under deploy/systemd (NAME=value lines,
// comments left out).
func envFile(t *testing.T, name string) map[string]string {
	t.Helper()
	b := readFile(t, filepath.Join("systemd", name))
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not NAME=value", name, line)
		}
		env[k] = v
	}
	return env
}

// TestSystemdCredentials: every secret a unit hands over as a file comes
// from a LoadCredential= of the same name, through a _FILE variable that
// config reads.
func TestSystemdCredentials(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	for _, name := range []string{"leadrelay-intake.service", "leadrelay-worker@.service"} {
		u := readUnit(t, name)
		loaded := map[string]bool{}
		for _, lc := range u["LoadCredential"] {
			id, _, _ := strings.Cut(lc, ":")
			loaded[id] = true
		}
		for k, v := range u.environment("1") {
			cred, ok := strings.CutPrefix(v, "%d/")
			if !ok {
				continue
			}
			if !strings.HasSuffix(k, "_FILE") || !known[k] {
				t.Errorf("%s: %s=%s: a credential needs a _FILE variable config reads", name, k, v)
			}
			if !loaded[cred] {
				t.Errorf("%s: %s names credential %q, which no LoadCredential= loads", name, k, cred)
			}
		}
	}
}

// TestSystemdEnvironmentLoads: what a unit hands LeadRelay (its plain
// settings, its secrets file as the example shows it, filled in, and its
// credentials, as README's install steps write them) passes LeadRelay's
// own checks.
func TestSystemdEnvironmentLoads(t *testing.T) {
	t.Parallel()
	fill := strings.NewReplacer("REDIS-PASSWORD", "a-redis-password", "SITE-KEY", "0123456789abcdef0123456789abcdef",
		"UI-PASSWORD", "a-good-long-password")
	for _, tc := range []struct{ unit, role string }{
		{"leadrelay-intake.service", "intake"},
		{"leadrelay-worker@.service", "worker"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			t.Parallel()
			creds, run := t.TempDir(), t.TempDir()
			env := map[string]string{}
			u := readUnit(t, tc.unit)
			for k, v := range u.environment("1") {
				env[k] = strings.NewReplacer("%d", creds, "%t", run).Replace(v)
			}
			if f := env["LEADRELAY_SITES_FILE"]; f != "" {
				// What ExecStartPre copies there: the example, filled in.
				if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte(filledSitesExample(t)), 0o400); err != nil {
					t.Fatal(err)
				}
			}
			credential := map[string]string{
				"redis_url":   "redis://" + tc.role + ":a-redis-password@127.0.0.1:6379/0",
				"ui_password": "a-good-long-password",
				"data_keys":   "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
			}
			for _, lc := range u["LoadCredential"] {
				id, _, _ := strings.Cut(lc, ":")
				v := credential[id]
				if v == "" {
					v = "a-real-secret-0123456789"
				}
				if err := os.WriteFile(filepath.Join(creds, id), []byte(v+"\n"), 0o400); err != nil {
					t.Fatal(err)
				}
			}
			// EnvironmentFile= lines override Environment= ones, in order.
			for _, f := range u["EnvironmentFile"] {
				f, optional := strings.CutPrefix(f, "-")
				if optional {
					continue
				}
				f = strings.TrimPrefix(f, "/etc/leadrelay/")
				if strings.HasSuffix(f, ".secrets.env") {
					f += ".example"
				}
				for k, v := range envFile(t, f) {
					env[k] = fill.Replace(v)
				}
			}
			if _, err := config.Load(func(k string) string { return env[k] }); err != nil {
				t.Errorf("Load: %v", err)
			}
		})
	}
}

// filledSitesExample is deploy/sites.example.yaml with its placeholders
// filled in as README.md's install steps do.
func filledSitesExample(t *testing.T) string {
	t.Helper()
	b := readFile(t, "sites.example.yaml")
	return strings.NewReplacer("SHOP-KEY", "0123456789abcdef0123456789abcdef", "SHOP-SECRET", "0123456789abcdef0123456789abcdef0123456789abcdef",
		"OLDSHOP-KEY", "fedcba9876543210fedcba9876543210").Replace(string(b))
}

// TestSitesExample: the example sites file, filled in, is a file intake
// accepts, holding what it shows; as shipped, with its placeholders, it is
// refused.
func TestSitesExample(t *testing.T) {
	t.Parallel()
	cfg, _ := config.LoadLenient(func(string) string { return "" })
	dir := t.TempDir()
	filled, shipped := filepath.Join(dir, "filled.yaml"), filepath.Join(dir, "shipped.yaml")
	if err := os.WriteFile(filled, []byte(filledSitesExample(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	sites, _, err := cfg.LoadSitesFile(filled)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sites.Names(), ","); got != "oldshop,shop" || sites["oldshop"].Charset != "windows-1251" || sites["shop"].Secret == "" {
		t.Errorf("sites = %+v", sites)
	}
	b := readFile(t, "sites.example.yaml")
	if err := os.WriteFile(shipped, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cfg.LoadSitesFile(shipped); err == nil {
		t.Error("the example with its placeholders is accepted")
	}
}
