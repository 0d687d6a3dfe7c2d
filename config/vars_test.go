package config

import (
	"errors"
	"strings"
	"testing"
)

func TestUnknownSuggests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"typo", []string{"LEADRELAY_MAXRETRY=5"}, []string{"unknown setting LEADRELAY_MAXRETRY is ignored; did you mean LEADRELAY_MAX_RETRY?"}},
		{"misspelled secret, value never quoted", []string{"LEADRELAY_CRM_APIKY=s3cret-value"}, []string{"unknown setting LEADRELAY_CRM_APIKY is ignored; did you mean LEADRELAY_CRM_APIKEY?"}},
		{"far from anything", []string{"LEADRELAY_BANANA_SPLIT=1"}, []string{"unknown setting LEADRELAY_BANANA_SPLIT is ignored"}},
		{"known and foreign names pass", []string{"LEADRELAY_MAX_RETRY=5", "PATH=/bin", "LEADRELAY_CRM_APIKEY_FILE=/k", "LEADRELAY_TEST_REDIS_SERVER=/usr/bin/redis-server"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Unknown(tc.environ)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Unknown(%q) = %q, want %q", tc.environ, got, tc.want)
			}
		})
	}
}

// TestErrorsQuoteValues: every problem with a plain setting quotes the
// value it got; secrets and URL passwords never appear.
func TestErrorsQuoteValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value, want string
	}{
		{"LEADRELAY_CRM_API", "v3", `LEADRELAY_CRM_API must be v1 or v2, got "v3"`},
		{"LEADRELAY_LOG_LEVEL", "loud", `got "loud"`},
		{"LEADRELAY_LOG_FORMAT", "xml", `got "xml"`},
		{"LEADRELAY_RECONCILE_UNKNOWN", "maybe", `got "maybe"`},
		{"LEADRELAY_QUEUE", "a b", `got "a b"`},
		{"LEADRELAY_CONCURRENCY", "0", `must be greater than zero, got "0"`},
		{"LEADRELAY_CONCURRENCY", "many", `got "many"`},
		{"LEADRELAY_RETRY_MULTIPLIER", "0.5", `got "0.5"`},
		{"LEADRELAY_CRM_RATE_LIMIT", "-1", `must not be negative, got "-1"`},
		{"LEADRELAY_RECONCILE_AFTER", "5s", `(5s < 30s)`},
		{"LEADRELAY_REDIS_URL", "localhost:6379", `got "localhost:6379"`},
		{"LEADRELAY_REDIS_URL", "http://user:hunter2secret@r:6379", `got "http://user:xxxxx@r:6379"`},
		{"LEADRELAY_CRM_URL", "ftp://crm", `got "ftp://crm"`},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			m := map[string]string{tc.name: tc.value, "LEADRELAY_UI_USER": "ops", "LEADRELAY_UI_PASSWORD": "pw-hunter2secret"}
			loadFails(t, m, []string{tc.want}, []string{"hunter2secret"})
		})
	}
}

// TestProblemsFor: a command that needs only Redis runs although a
// worker-only setting is bad.
func TestProblemsFor(t *testing.T) {
	t.Parallel()
	c, problems := LoadLenient(env(map[string]string{
		"LEADRELAY_REDIS_URL":       "redis://127.0.0.1:6379/0",
		"LEADRELAY_RETRY_MAX_DELAY": "soon",
		"LEADRELAY_CRM_API":         "v3",
	}))
	if err := problems.For(RedisVars...); err != nil {
		t.Errorf("Redis settings fine, got %v", err)
	}
	if c.Redis.URL != "redis://127.0.0.1:6379/0" || c.Queue.Name != "leads" {
		t.Errorf("lenient config = %+v", c)
	}
	err := problems.For(CRMVars...)
	var p *Problem
	if !errors.As(err, &p) || p.Var != "LEADRELAY_CRM_API" {
		t.Errorf("CRM problems = %v, want LEADRELAY_CRM_API", err)
	}
	if problems.Err() == nil || len(problems) != 2 {
		t.Errorf("all problems = %v", problems)
	}
}

// varsByName is Vars by their names.
func varsByName() map[string]Var {
	m := map[string]Var{}
	for _, v := range Vars() {
		m[v.Name] = v
	}
	return m
}

// TestVarsListsDefaults: the help's list comes from Load itself.
func TestVarsListsDefaults(t *testing.T) {
	t.Parallel()
	got := varsByName()
	for name, def := range map[string]string{
		"LEADRELAY_MAX_RETRY": "80", "LEADRELAY_RETRY_MAX_DELAY": "1h", "LEADRELAY_DELIVERED_TTL": "720h",
		"LEADRELAY_RECONCILE_AFTER": "2m", "LEADRELAY_CRM_API": "v1", "LEADRELAY_HTTP_ADDR": "127.0.0.1:8080",
	} {
		if got[name].Default != def {
			t.Errorf("%s default = %q, want %q", name, got[name].Default, def)
		}
	}
	for _, name := range []string{"LEADRELAY_CRM_APIKEY", "LEADRELAY_SITES", "LEADRELAY_SITE_SECRETS", "LEADRELAY_UI_PASSWORD"} {
		if !got[name].Secret {
			t.Errorf("%s is not marked secret", name)
		}
	}
	if got["LEADRELAY_SITE_ORIGINS"].Secret {
		t.Error("origins are not secret")
	}
}
