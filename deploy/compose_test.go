// Package deploy holds the deployment files: the systemd units
// (systemd/), the Helm chart (helm/leadrelay), Redis's settings and users
// (redis.conf, redis-acl.sh), the alert rules and the dashboard, and beside
// it the repository's docker-compose.yml and Dockerfile. Its tests check
// them with the tools that run them where those are here (systemd-analyze,
// helm, redis-server) and by reading them where not (Docker), and check
// that every LEADRELAY_* name in them is a setting LeadRelay reads.
package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"leadrelay/config"
)

// service is what the test reads of one compose service.
type service struct {
	env      map[string]string
	ports    []string
	secrets  []string
	networks []string
	profiles []string
}

// composeFile is the part of docker-compose.yml the tests read. YAML's
// merge key (<<: *relay) is resolved by the decoder, so each service's
// environment holds the shared settings too.
type composeFile struct {
	Relay    map[string]string `yaml:"x-relay"`
	Services map[string]struct {
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Secrets     []string          `yaml:"secrets"`
		Networks    []string          `yaml:"networks"`
		Profiles    []string          `yaml:"profiles"`
	} `yaml:"services"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
	Secrets map[string]struct {
		File        string `yaml:"file"`
		Environment string `yaml:"environment"`
	} `yaml:"secrets"`
}

// readCompose parses docker-compose.yml: the shared x-relay environment,
// each service, the raw text and the whole parsed file.
func readCompose(t *testing.T) (shared map[string]string, services map[string]*service, text string) {
	t.Helper()
	f, text := parseCompose(t)
	services = map[string]*service{}
	for name, s := range f.Services {
		env := s.Environment
		if env == nil {
			env = map[string]string{}
		}
		services[name] = &service{env: env, ports: s.Ports, secrets: s.Secrets, networks: s.Networks, profiles: s.Profiles}
	}
	return f.Relay, services, text
}

func parseCompose(t *testing.T) (composeFile, string) {
	t.Helper()
	b := readFile(t, "../docker-compose.yml")
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f, string(b)
}

// defaultRE matches ${VAR:-default} and ${VAR-default}, a value used when
// the operator sets nothing.
var defaultRE = regexp.MustCompile(`\$\{(\w+):?-([^}]*)\}`)

// TestComposeNoWorkingDefaults is finding H2: docker-compose shipped
// working credentials (ops/change-me-ui-password, demo=change-me-demo-site-key)
// on ports bound to every interface, and handed the CRM key to every
// container in the environment.
func TestComposeNoWorkingDefaults(t *testing.T) {
	t.Parallel()
	shared, services, text := readCompose(t)
	if strings.Contains(strings.ToLower(text), "change-me") {
		t.Error("docker-compose.yml still holds a change-me placeholder")
	}
	for _, want := range []string{"intake", "worker", "crmsim", "redis", "ctl"} {
		if services[want] == nil {
			t.Fatalf("service %q not found; the reader or the file changed", want)
		}
	}
	secretVars := []string{"LEADRELAY_SITES", "LEADRELAY_UI_USER", "LEADRELAY_UI_PASSWORD", "LEADRELAY_CRM_APIKEY", "LEADRELAY_SITE_SECRETS"}
	for _, v := range secretVars {
		if val, ok := shared[v]; ok && !strings.HasPrefix(val, "${"+v+":?") {
			t.Errorf("x-relay %s = %s: must come from the operator (${%s:?…})", v, val, v)
		}
	}
	for name, s := range services {
		env := s.env
		t.Run(name, func(t *testing.T) {
			for _, v := range secretVars {
				val, ok := env[v]
				if !ok {
					continue
				}
				if m := defaultRE.FindStringSubmatch(val); m != nil {
					t.Errorf("%s = %s: a credential with a default; use ${%s:?…}", v, val, v)
				}
				if !strings.HasPrefix(val, "${"+v+":?") {
					t.Errorf("%s = %s: must come from the operator (${%s:?…})", v, val, v)
				}
			}
			if _, ok := env["LEADRELAY_UI_PASSWORD"]; ok {
				t.Error("the UI password is in the environment; give it as the ui_password secret")
			}
			if _, ok := env["LEADRELAY_CRM_APIKEY"]; ok {
				t.Error("the CRM key is in the environment; give it as the crm_apikey secret")
			}
			holdsKey := env["LEADRELAY_CRM_APIKEY_FILE"] != "" || strings.Contains(strings.Join(s.secrets, " "), "crm_apikey")
			if wantKey := name == "worker" || name == "crmsim"; holdsKey != wantKey {
				t.Errorf("holds the CRM key: %v, want %v (only workers and the simulator need it)", holdsKey, wantKey)
			}
			if name == "worker" && env["LEADRELAY_CRM_APIKEY_FILE"] != "/run/secrets/crm_apikey" {
				t.Errorf("worker reads the key from %q", env["LEADRELAY_CRM_APIKEY_FILE"])
			}
			for _, p := range s.ports {
				if !strings.HasPrefix(p, "127.0.0.1:") && !strings.HasPrefix(p, "${LEADRELAY_BIND:-127.0.0.1}:") &&
					!strings.HasPrefix(p, "${LEADRELAY_OPS_BIND:-127.0.0.1}:") {
					t.Errorf("port %q is published on every interface; bind 127.0.0.1", p)
				}
				if strings.HasSuffix(p, ":9090") {
					t.Errorf("the simulator's port %q is published: its admin endpoints need no key", p)
				}
			}
		})
	}
}

// TestComposeEnvironmentLoads: the intake and worker environments, filled
// in as the file's header says, pass LeadRelay's own checks; filled with the
// old placeholders they stop the start, naming the variables.
func TestComposeEnvironmentLoads(t *testing.T) {
	t.Parallel()
	shared, services, _ := readCompose(t)
	f, _ := parseCompose(t)
	keyFile := t.TempDir() + "/crm_apikey"
	if err := os.WriteFile(keyFile, []byte("a-real-crm-key-0123456789"), 0o400); err != nil {
		t.Fatal(err)
	}
	// secretFile is the file compose mounts at /run/secrets/NAME: the
	// operator's variable for an environment secret, the key file else.
	secretFile := func(t *testing.T, path string, operator map[string]string) string {
		name, ok := strings.CutPrefix(path, "/run/secrets/")
		s, declared := f.Secrets[name]
		if !ok || !declared {
			t.Fatalf("%s is not a secret the file declares", path)
		}
		if s.Environment == "" {
			return keyFile
		}
		file := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(file, []byte(operator[s.Environment]), 0o400); err != nil {
			t.Fatal(err)
		}
		return file
	}
	redisPasswords := map[string]string{
		"REDIS_INTAKE_PASSWORD": "0123456789abcdef01", "REDIS_WORKER_PASSWORD": "0123456789abcdef02", "REDIS_OPS_PASSWORD": "0123456789abcdef03",
		"LEADRELAY_DATA_KEYS": "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	}
	good := map[string]string{
		"LEADRELAY_SITES": "shop=0123456789abcdef0123456789abcdef", "LEADRELAY_UI_USER": "ops", "LEADRELAY_UI_PASSWORD": "a-good-long-password",
	}
	old := map[string]string{
		"LEADRELAY_SITES": "demo=change-me-demo-site-key", "LEADRELAY_UI_USER": "ops", "LEADRELAY_UI_PASSWORD": "change-me-ui-password",
	}
	for k, v := range redisPasswords {
		good[k], old[k] = v, v
	}
	expand := func(v string, operator map[string]string) string {
		v = regexp.MustCompile(`\$\{(\w+):\?[^}]*\}`).ReplaceAllStringFunc(v, func(m string) string {
			return operator[regexp.MustCompile(`\w+`).FindString(m[2:])]
		})
		return defaultRE.ReplaceAllString(v, "$2")
	}
	tests := []struct {
		name, service string
		operator      map[string]string
		wantErr       []string
	}{
		{"intake", "intake", good, nil},
		{"worker", "worker", good, nil},
		{"ctl", "ctl", good, nil},
		{"intake with the old placeholders", "intake", old, []string{"LEADRELAY_UI_PASSWORD is a placeholder", `key of site "demo" is a placeholder`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range shared {
				env[k] = expand(v, tc.operator)
			}
			for k, v := range services[tc.service].env {
				env[k] = expand(v, tc.operator)
			}
			for k, v := range env {
				if strings.HasSuffix(k, "_FILE") {
					env[k] = secretFile(t, v, tc.operator)
				}
			}
			_, err := config.Load(func(k string) string { return env[k] })
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %v, want %q", err, w)
				}
			}
		})
	}
}

// TestDockerfileDataVolume: the simulator's data volume at /data must be
// writable for the image's nonroot user, and the build context must not
// carry secrets into the image.
func TestDockerfileDataVolume(t *testing.T) {
	t.Parallel()
	df := readFile(t, "../Dockerfile")
	ignore := readFile(t, "../.dockerignore")
	tests := []struct {
		name, text, want string
	}{
		{"nonroot user", string(df), "USER nonroot"},
		{"/data owned by nonroot", string(df), "--chown=65532:65532 /out/data /data"},
		{"no .git in the context", string(ignore), "\n.git\n"},
		{"no secrets in the context", string(ignore), "\nsecrets/\n"},
		{"no .env in the context", string(ignore), "\n.env\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.text, tc.want) {
				t.Errorf("missing %q", tc.want)
			}
		})
	}
}

// TestSimulatorOwnImage: the relay binary carries no simulator command, so
// compose's crmsim service builds the Dockerfile's crmsim target from
// tools/crmsim and passes only the simulator's flags.
func TestSimulatorOwnImage(t *testing.T) {
	t.Parallel()
	df := readFile(t, "../Dockerfile")
	_, _, compose := readCompose(t)
	tests := []struct {
		name, text, want string
	}{
		{"built from tools/crmsim", string(df), "-o /crmsim ./tools/crmsim"},
		{"a crmsim stage", string(df), " AS crmsim\n"},
		{"its entrypoint", string(df), `ENTRYPOINT ["/crmsim"]`},
		{"compose builds that target", compose, "target: crmsim\n"},
		{"compose passes flags only", compose, `command: ["--addr", "0.0.0.0:9090"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.text, tc.want) {
				t.Errorf("missing %q", tc.want)
			}
		})
	}
	// The default target, the last stage, is the relay.
	if last := string(df[strings.LastIndex(string(df), "\nFROM "):]); !strings.Contains(last, `ENTRYPOINT ["/leadrelay"]`) {
		t.Errorf("the Dockerfile's last stage is not the relay:\n%s", last)
	}
}
