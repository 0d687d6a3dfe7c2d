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

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.EmbeddedRedis() || !c.EmbeddedCRM() {
		t.Error("empty env must mean embedded Redis and CRM")
	}
	if c.LogFormat != "console" {
		t.Errorf("embedded LogFormat = %q, want console", c.LogFormat)
	}
	if c, _ := Load(env(map[string]string{"LEADRELAY_REDIS_URL": "redis://r:6379/0"})); c.LogFormat != "json" {
		t.Errorf("production LogFormat = %q, want json", c.LogFormat)
	}
	if c.CRMAPI != "v1" || c.Queue != "leads" || c.RetryInitial != 10*time.Second || c.RetryMaxDelay != time.Hour ||
		c.DedupTTL != 24*time.Hour || c.DeliveredTTL != 720*time.Hour || c.HTTPAddr != "127.0.0.1:8080" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{
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
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CRMAPIKey != "file-secret" {
		t.Errorf("CRMAPIKey from file = %q", c.CRMAPIKey)
	}
	if c.Sites["blog"] != "fedcba9876543210fedc" || len(c.Sites) != 2 {
		t.Errorf("Sites = %v", c.Sites)
	}
	if got := strings.Join(c.SiteOrigins["shop"], " "); got != "https://shop.example http://localhost:3000" {
		t.Errorf("origins = %q", got)
	}
	if fmt.Sprint(c.TrustedProxies) != "[10.0.0.0/8 192.0.2.7/32 ::1/128]" {
		t.Errorf("TrustedProxies = %v", c.TrustedProxies)
	}
	if c.RetryInitial != time.Second || c.Concurrency != 3 || c.CRMAPI != "v2" {
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(env(tc.env))
			if err == nil {
				t.Fatal("Load() = nil error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, secret := range []string{"0123456789abcdef0123", "tinykey"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %q", err)
				}
			}
		})
	}
}
