package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// mustLoad is Load's Config for m; an error fails t.
func mustLoad(t *testing.T, m map[string]string) Config {
	t.Helper()
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loadFails checks that Load refuses m with an error that names every one
// of want and shows none of secrets.
func loadFails(t *testing.T, m map[string]string, want, secrets []string) {
	t.Helper()
	_, err := Load(env(m))
	if err == nil {
		t.Fatal("Load() = nil error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	for _, secret := range secrets {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks a secret (%q): %q", secret, err)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, nil)
	if !c.EmbeddedRedis() || !c.EmbeddedCRM() {
		t.Error("empty env must mean embedded Redis and CRM")
	}
	if c.Log.Format != "console" {
		t.Errorf("embedded LogFormat = %q, want console", c.Log.Format)
	}
	if c, _ := Load(env(map[string]string{"LEADRELAY_REDIS_URL": "redis://r:6379/0"})); c.Log.Format != "json" {
		t.Errorf("production LogFormat = %q, want json", c.Log.Format)
	}
	if c.CRM.API != "v1" || c.Queue.Name != "leads" || c.Worker.RetryInitial != 10*time.Second || c.Worker.RetryMaxDelay != time.Hour ||
		c.Queue.DedupTTL != 24*time.Hour || c.Worker.DeliveredTTL != 720*time.Hour || c.Server.HTTPAddr != "127.0.0.1:8080" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, map[string]string{
		"LEADRELAY_REDIS_URL":       "redis://127.0.0.1:6379/2",
		"LEADRELAY_CRM_URL":         "https://crm.example.com",
		"LEADRELAY_CRM_API":         "v2",
		"LEADRELAY_CRM_LOGIN":       "admin@example.com",
		"LEADRELAY_CRM_APIKEY_FILE": keyFile,
		"LEADRELAY_SITES":           "shop=0123456789abcdef0123, blog = fedcba9876543210fedc",
		"LEADRELAY_SITE_ORIGINS":    "shop=https://shop.example|http://localhost:3000",
		"LEADRELAY_RETRY_INITIAL":   "1s",
		"LEADRELAY_CONCURRENCY":     "3",
		"LEADRELAY_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7, ::1",
	})
	if c.CRM.APIKey != "file-secret" {
		t.Errorf("CRMAPIKey from file = %q", c.CRM.APIKey)
	}
	if strings.Join(c.Intake.Sites["blog"].Keys, ",") != "fedcba9876543210fedc" || len(c.Intake.Sites) != 2 {
		t.Errorf("Sites = %v", c.Intake.Sites)
	}
	if got := strings.Join(c.Intake.Sites["shop"].Origins, " "); got != "https://shop.example http://localhost:3000" {
		t.Errorf("origins = %q", got)
	}
	if fmt.Sprint(c.Server.TrustedProxies) != "[10.0.0.0/8 192.0.2.7/32 ::1/128]" {
		t.Errorf("TrustedProxies = %v", c.Server.TrustedProxies)
	}
	if c.Worker.RetryInitial != time.Second || c.Worker.Concurrency != 3 || c.CRM.API != "v2" {
		t.Errorf("parsed = %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"every problem at once", map[string]string{
			"LEADRELAY_REDIS_URL":       "localhost:6379",
			"LEADRELAY_CRM_API":         "v3",
			"LEADRELAY_CONCURRENCY":     "many",
			"LEADRELAY_RETRY_MAX_DELAY": "soon",
		}, []string{"LEADRELAY_REDIS_URL", "LEADRELAY_CRM_API", "LEADRELAY_CONCURRENCY", "LEADRELAY_RETRY_MAX_DELAY"}},
		{"crm url needs credentials", map[string]string{"LEADRELAY_CRM_URL": "https://crm.example.com"},
			[]string{"LEADRELAY_CRM_LOGIN", "LEADRELAY_CRM_APIKEY"}},
		{"key in url", map[string]string{"LEADRELAY_CRM_URL": "https://u:p@crm.example.com/?apikey=x", "LEADRELAY_CRM_LOGIN": "a", "LEADRELAY_CRM_APIKEY": "k"},
			[]string{"must not carry credentials"}},
		{"short site key", map[string]string{"LEADRELAY_SITES": "shop=tinykey"}, []string{"shorter than 16"}},
		{"bad site entry", map[string]string{"LEADRELAY_SITES": "shop"}, []string{"entry 1 is not name=value"}},
		{"site reuses crm key", map[string]string{"LEADRELAY_SITES": "shop=0123456789abcdef0123",
			"LEADRELAY_CRM_URL": "http://crm", "LEADRELAY_CRM_LOGIN": "a", "LEADRELAY_CRM_APIKEY": "0123456789abcdef0123"},
			[]string{"uses the CRM's API key"}},
		{"ui half set", map[string]string{"LEADRELAY_UI_USER": "ops"}, []string{"LEADRELAY_UI_PASSWORD"}},
		{"json needs v2", map[string]string{"LEADRELAY_CRM_JSON": "true"}, []string{"LEADRELAY_CRM_JSON"}},
		{"key twice", map[string]string{"LEADRELAY_CRM_APIKEY": "a", "LEADRELAY_CRM_APIKEY_FILE": "/x"}, []string{"both set"}},
		{"missing key file", map[string]string{"LEADRELAY_CRM_APIKEY_FILE": "/nonexistent/key"}, []string{"LEADRELAY_CRM_APIKEY_FILE cannot be read"}},
		{"origins for unknown site", map[string]string{"LEADRELAY_SITE_ORIGINS": "x=https://a.example"}, []string{"not in LEADRELAY_SITES"}},
		{"reconcile", map[string]string{"LEADRELAY_RECONCILE_UNKNOWN": "maybe"}, []string{"resend or dead"}},
		{"reconcile too early", map[string]string{"LEADRELAY_RECONCILE_AFTER": "5s", "LEADRELAY_CRM_TIMEOUT": "10s"}, []string{"LEADRELAY_RECONCILE_AFTER must not be shorter"}},
		{"proxies", map[string]string{"LEADRELAY_TRUSTED_PROXIES": "10.0.0.0/8,nginx"}, []string{`entry "nginx" is not an address`}},
		// Finding H2: the compose file's sample secrets started a production
		// relay, and M3: a one-character UI password was accepted.
		{"placeholder ui password", map[string]string{"LEADRELAY_REDIS_URL": "redis://r:6379/0", "LEADRELAY_UI_USER": "ops", "LEADRELAY_UI_PASSWORD": "change-me-ui-password"},
			[]string{"LEADRELAY_UI_PASSWORD is a placeholder"}},
		{"weak ui password", map[string]string{"LEADRELAY_REDIS_URL": "redis://r:6379/0", "LEADRELAY_UI_USER": "ops", "LEADRELAY_UI_PASSWORD": "x"},
			[]string{"LEADRELAY_UI_PASSWORD is shorter than 12"}},
		{"placeholder site key", map[string]string{"LEADRELAY_REDIS_URL": "redis://r:6379/0", "LEADRELAY_SITES": "demo=change-me-demo-site-key"},
			[]string{`LEADRELAY_SITES key of site "demo" is a placeholder`}},
		{"placeholder crm key", map[string]string{"LEADRELAY_REDIS_URL": "redis://r:6379/0", "LEADRELAY_CRM_URL": "http://crm", "LEADRELAY_CRM_LOGIN": "a", "LEADRELAY_CRM_APIKEY": "CHANGE-ME-crm-key"},
			[]string{"LEADRELAY_CRM_APIKEY is a placeholder"}},
		{"placeholder site secret", map[string]string{"LEADRELAY_REDIS_URL": "redis://r:6379/0", "LEADRELAY_SITES": "shop=0123456789abcdef0123", "LEADRELAY_SITE_SECRETS": "shop=changeme"},
			[]string{`LEADRELAY_SITE_SECRETS secret of site "shop" is a placeholder`}},
		// Finding 7 of issue 18: intake started with a one-character secret,
		// or a secret equal to the site's key, which every request carries.
		{"short site secret", map[string]string{"LEADRELAY_SITES": "shop=0123456789abcdef0123", "LEADRELAY_SITE_SECRETS": "shop=short-secret-0123456789"},
			[]string{`LEADRELAY_SITE_SECRETS secret of site "shop" is shorter than 32 bytes`}},
		{"site secret is the key", map[string]string{"LEADRELAY_SITES": "shop=0123456789abcdef0123456789abcdef", "LEADRELAY_SITE_SECRETS": "shop=0123456789abcdef0123456789abcdef"},
			[]string{`LEADRELAY_SITE_SECRETS secret of site "shop" equals the key of site "shop"`}},
		{"site secret is another site's key", map[string]string{"LEADRELAY_SITES": "blog=0123456789abcdef0123456789abcdef,shop=fedcba9876543210fedcba98", "LEADRELAY_SITE_SECRETS": "shop=0123456789abcdef0123456789abcdef"},
			[]string{`LEADRELAY_SITE_SECRETS secret of site "shop" equals the key of site "blog"`}},
		// Low finding: two sites sharing a key were only logged.
		{"two sites one key", map[string]string{"LEADRELAY_SITES": "blog=0123456789abcdef0123,shop=0123456789abcdef0123"},
			[]string{`sites "blog" and "shop" share one key`}},
		{"ops on the site listener", map[string]string{"LEADRELAY_HTTP_ADDR": "0.0.0.0:8080", "LEADRELAY_OPS_ADDR": "0.0.0.0:8080"},
			[]string{"LEADRELAY_OPS_ADDR must differ"}},
		{"no auth and a user", map[string]string{"LEADRELAY_OPS_NO_AUTH": "true", "LEADRELAY_UI_USER": "ops", "LEADRELAY_UI_PASSWORD": "a-long-password"},
			[]string{"LEADRELAY_OPS_NO_AUTH and LEADRELAY_UI_USER are both set"}},
		{"memory guard over 1", map[string]string{"LEADRELAY_REDIS_MEMORY_GUARD": "80"}, []string{"LEADRELAY_REDIS_MEMORY_GUARD must be a share"}},
		{"site cap over the global cap", map[string]string{"LEADRELAY_SITE_MAX_QUEUED": "500", "LEADRELAY_MAX_QUEUED": "100"}, []string{"LEADRELAY_SITE_MAX_QUEUED must not exceed"}},
		{"negative cap", map[string]string{"LEADRELAY_MAX_QUEUED": "-1"}, []string{"must not be negative"}},
		{"ops host with a port", map[string]string{"LEADRELAY_OPS_HOSTS": "ops.example.com:8081"}, []string{"LEADRELAY_OPS_HOSTS entry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loadFails(t, tc.env, tc.want, []string{"0123456789abcdef0123", "tinykey", "change-me-ui-password", "change-me-demo-site-key", "CHANGE-ME-crm-key", "short-secret-0123456789", "fedcba9876543210fedcba98"})
		})
	}
}

// TestSecretsInTheDemo: the embedded demo keeps working with any UI
// password; its data are throw-away and its listeners loopback.
func TestSecretsInTheDemo(t *testing.T) {
	t.Parallel()
	if _, err := Load(env(map[string]string{"LEADRELAY_UI_USER": "ops", "LEADRELAY_UI_PASSWORD": "x"})); err != nil {
		t.Errorf("demo with a short UI password: %v", err)
	}
}

// TestOpsAddr: the ops listener defaults to loopback, and to a free port
// when the site listener takes one (so several processes on one host
// never collide), also after an --addr override.
func TestOpsAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		override string
		want     string
	}{
		{"default", nil, "", "127.0.0.1:8081"},
		{"free site port", map[string]string{"LEADRELAY_HTTP_ADDR": "127.0.0.1:0"}, "", "127.0.0.1:0"},
		{"set", map[string]string{"LEADRELAY_OPS_ADDR": "127.0.0.1:9999"}, "", "127.0.0.1:9999"},
		{"--addr with a free port", nil, "127.0.0.1:0", "127.0.0.1:0"},
		{"--addr keeps a set ops address", map[string]string{"LEADRELAY_OPS_ADDR": "127.0.0.1:9999"}, "127.0.0.1:0", "127.0.0.1:9999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tc.env)
			if tc.override != "" {
				c.SetHTTPAddr(tc.override)
			}
			if c.Ops.Addr != tc.want {
				t.Errorf("OpsAddr = %q, want %q", c.Ops.Addr, tc.want)
			}
		})
	}
}

// TestWorldReadableKeyFile is a low finding: a key file every user of the
// host may read was accepted silently. It still loads, with a warning.
func TestWorldReadableKeyFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mode os.FileMode
		warn bool
	}{{"private", 0o600, false}, {"group", 0o640, false}, {"everyone", 0o644, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(f, []byte("a-real-crm-key-0123"), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(f, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			c := mustLoad(t, map[string]string{"LEADRELAY_CRM_APIKEY_FILE": f})
			got := strings.Join(c.Warnings, "\n")
			if tc.warn != strings.Contains(got, "LEADRELAY_CRM_APIKEY_FILE "+f+" is readable by every user") {
				t.Errorf("warnings = %q, want a warning: %v", got, tc.warn)
			}
		})
	}
}
