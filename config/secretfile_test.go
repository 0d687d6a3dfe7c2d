package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFiles: every secret setting can come from the file its _FILE
// variable names (systemd credentials, container secrets), with the same
// result as the variable itself; both at once, or an unreadable file, is
// a problem named by the variable.
func TestSecretFiles(t *testing.T) {
	t.Parallel()
	base := map[string]string{"LEADRELAY_REDIS_URL": "redis://127.0.0.1:6379/0"}
	tests := []struct {
		name  string
		value string
		env   map[string]string // besides base and the secret
		got   func(Config) string
	}{
		{"LEADRELAY_REDIS_URL", "redis://intake:s3cret-pw@127.0.0.1:6379/0", nil,
			func(c Config) string { return c.Redis.URL + " " + c.Redis.Password }},
		{"LEADRELAY_REDIS_SENTINEL_PASSWORD", "sentinel-s3cret",
			map[string]string{"LEADRELAY_REDIS_URL": "redis-sentinel://s1:26379/0?master=m"},
			func(c Config) string { return c.Redis.SentinelPassword }},
		{"LEADRELAY_CRM_APIKEY", "crm-s3cret-key",
			map[string]string{"LEADRELAY_CRM_URL": "https://crm.example.com", "LEADRELAY_CRM_LOGIN": "relay@example.com"},
			func(c Config) string { return c.CRM.APIKey }},
		{"LEADRELAY_UI_PASSWORD", "ui-s3cret-password", map[string]string{"LEADRELAY_UI_USER": "ops"},
			func(c Config) string { return c.Ops.Password }},
		{"LEADRELAY_NOTIFY_URL", "https://hooks.example.com/services/s3cret", nil,
			func(c Config) string { return c.Notify.URL }},
		{"LEADRELAY_SITE_SECRETS", "shop=shop-s3cret-0123456789abcdef0123456789", map[string]string{"LEADRELAY_SITES": "shop=0123456789abcdef0123"},
			func(c Config) string { return c.Intake.Sites["shop"].Secret }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			envWith := func(extra map[string]string) map[string]string {
				m := map[string]string{}
				for _, src := range []map[string]string{base, tc.env} {
					for k, v := range src {
						m[k] = v
					}
				}
				delete(m, tc.name)
				for k, v := range extra {
					m[k] = v
				}
				return m
			}
			direct := mustLoad(t, envWith(map[string]string{tc.name: tc.value}))
			file := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(file, []byte(tc.value+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			fromFile := mustLoad(t, envWith(map[string]string{tc.name + "_FILE": file}))
			if tc.got(fromFile) != tc.got(direct) || tc.got(direct) == "" {
				t.Errorf("from the file %q, from the variable %q", tc.got(fromFile), tc.got(direct))
			}
			_, err := Load(env(envWith(map[string]string{tc.name: tc.value, tc.name + "_FILE": file})))
			if err == nil || !strings.Contains(err.Error(), tc.name+" and "+tc.name+"_FILE are both set") {
				t.Errorf("both set: %v", err)
			}
			_, err = Load(env(envWith(map[string]string{tc.name + "_FILE": file + ".missing"})))
			if err == nil || !strings.Contains(err.Error(), tc.name+"_FILE cannot be read") {
				t.Errorf("missing file: %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestEverySecretHasAFile: each secret setting has its _FILE variant, so
// the deployment files can hand every secret over as a file. The sites'
// keys are the exception: LEADRELAY_SITES_FILE is the sites file.
func TestEverySecretHasAFile(t *testing.T) {
	t.Parallel()
	known := varsByName()
	for _, v := range Vars() {
		if _, ok := known[v.Name+"_FILE"]; v.Secret && v.Name != "LEADRELAY_SITES" && !ok {
			t.Errorf("secret %s has no %s_FILE", v.Name, v.Name)
		}
	}
}
