package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"leadrelay/config"
	"leadrelay/internal/redistest"
)

// TestRedisThatMayLoseLeads is issue 17.5 against real redis-servers: with
// maxmemory-policy allkeys-lru (common on managed Redis) a full Redis lost
// acknowledged leads and nothing said why; without an append-only file a
// restart lost and duplicated leads. Intake and workers now refuse to
// start, naming the setting and its override; with the override they run.
func TestRedisThatMayLoseLeads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		roles Roles
		want  []string // in the error; none: it runs
	}{
		{"intake, evicting", []string{"--maxmemory-policy", "allkeys-lru"}, nil, Roles{Intake: true},
			[]string{"maxmemory-policy allkeys-lru", "noeviction", "LEADRELAY_REDIS_ALLOW_EVICTION"}},
		{"worker, evicting", []string{"--maxmemory-policy", "volatile-lru"}, nil, Roles{Worker: true},
			[]string{"maxmemory-policy volatile-lru", "LEADRELAY_REDIS_ALLOW_EVICTION"}},
		{"intake, no AOF", []string{"--appendonly", "no"}, nil, Roles{Intake: true},
			[]string{"appendonly no", "appendonly yes", "LEADRELAY_REDIS_ALLOW_NO_AOF"}},
		{"worker, no AOF", []string{"--appendonly", "no"}, nil, Roles{Worker: true},
			[]string{"appendonly no", "LEADRELAY_REDIS_ALLOW_NO_AOF"}},
		{"intake, evicting, allowed", []string{"--maxmemory-policy", "allkeys-lru"},
			map[string]string{"LEADRELAY_REDIS_ALLOW_EVICTION": "true"}, Roles{Intake: true}, nil},
		{"intake, no AOF, allowed", []string{"--appendonly", "no"},
			map[string]string{"LEADRELAY_REDIS_ALLOW_NO_AOF": "true"}, Roles{Intake: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rds := redistest.StartWith(t, tc.args...)
			if tc.want == nil {
				site, _ := runIntakeOn(t, rds, tc.env)
				if code, _ := postLead(t, site, siteKey, annLead); code != http.StatusAccepted {
					t.Errorf("a lead through the allowed Redis: %d, want 202", code)
				}
				return
			}
			env := map[string]string{
				"LEADRELAY_REDIS_URL": rds.URL(), "LEADRELAY_SITES": "shop=site-key-0123456789abcdef", "LEADRELAY_DATA_KEYS": testDataKeys,
				"LEADRELAY_HTTP_ADDR": "127.0.0.1:0", "LEADRELAY_CRM_URL": "http://127.0.0.1:1",
				"LEADRELAY_CRM_LOGIN": "relay", "LEADRELAY_CRM_APIKEY": "crm-key-0123456789",
			}
			cfg := loadConfig(t, env)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err := Run(ctx, cfg, tc.roles, io.Discard, zap.NewNop())
			if err == nil {
				t.Fatal("Run started against a Redis that may lose leads")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Run: %v\nwant it to name %q", err, w)
				}
			}
		})
	}
}

// TestDurabilityWatch: a Redis changed while LeadRelay runs (CONFIG SET)
// is noticed at the next reading, logged once as an error naming the
// setting, and intake's refusal (Problem) ends when it is changed back.
func TestDurabilityWatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rds := redistest.Start(t)
	core, logs := observer.New(zap.InfoLevel)
	g := newDurability(&Redis{Client: rds.Client()}, config.Config{}, zap.New(core))
	if err := g.start(ctx); err != nil {
		t.Fatalf("start on a safe Redis: %v", err)
	}
	steps := []struct {
		policy string
		want   string // in Problem; "" none
	}{
		{"allkeys-lru", "maxmemory-policy allkeys-lru"},
		{"allkeys-lru", "maxmemory-policy allkeys-lru"},
		{"noeviction", ""},
	}
	for _, s := range steps {
		if err := rds.Client().ConfigSet(ctx, "maxmemory-policy", s.policy).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := g.check(ctx); err != nil {
			t.Fatal(err)
		}
		if p := g.Problem(); s.want == "" && p != "" || !strings.Contains(p, s.want) {
			t.Errorf("policy %s: Problem() = %q, want %q", s.policy, p, s.want)
		}
	}
	if n := logs.FilterLevelExact(zap.ErrorLevel).Len(); n != 1 {
		t.Errorf("%d error lines for one problem seen twice, want 1", n)
	}
	if n := logs.FilterMessageSnippet("keeps leads again").Len(); n != 1 {
		t.Errorf("%d lines saying the problem is over, want 1", n)
	}
}
