package deploy

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"leadrelay/internal/redistest"
)

// relayRoles are the compose services that run LeadRelay against Redis,
// each as its own Redis user: the service's name is the user's.
var relayRoles = map[string]string{"intake": "intake", "worker": "worker", "ctl": "ops"}

// TestComposeNetworks is finding 6 of the privacy review: Redis shared a
// network with the simulator. Redis now sits on a network of its own with
// no route outside, reached only by LeadRelay's processes.
func TestComposeNetworks(t *testing.T) {
	t.Parallel()
	f, _ := parseCompose(t)
	_, services, _ := readCompose(t)
	redisNets := services["redis"].networks
	if len(redisNets) == 0 {
		t.Fatal("redis is on compose's default network, which every service shares")
	}
	for _, n := range redisNets {
		if !f.Networks[n].Internal {
			t.Errorf("network %q of redis is not internal: it routes outside", n)
		}
	}
	for name, s := range services {
		if len(s.networks) == 0 {
			t.Errorf("%s is on the default network", name)
		}
		onRedis := slices.ContainsFunc(s.networks, func(n string) bool { return slices.Contains(redisNets, n) })
		_, relay := relayRoles[name]
		if want := relay || name == "redis"; onRedis != want {
			t.Errorf("%s shares a network with redis: %v, want %v", name, onRedis, want)
		}
	}
	if !slices.ContainsFunc(services["crmsim"].networks, func(n string) bool { return slices.Contains(services["worker"].networks, n) }) {
		t.Error("the workers cannot reach the simulator")
	}
}

// TestComposeOpsBind is finding 6's other half: one variable published
// both the sites' and the operators' port. Each now has its own.
func TestComposeOpsBind(t *testing.T) {
	t.Parallel()
	_, services, _ := readCompose(t)
	want := map[string]string{"8080": "LEADRELAY_BIND", "8081": "LEADRELAY_OPS_BIND"}
	got := map[string]string{}
	for _, p := range services["intake"].ports {
		m := regexp.MustCompile(`^\$\{(\w+):-127\.0\.0\.1\}:\d+:(\d+)$`).FindStringSubmatch(p)
		if m == nil {
			t.Errorf("intake port %q: want ${VAR:-127.0.0.1}:host:container", p)
			continue
		}
		got[m[2]] = m[1]
	}
	for port, v := range want {
		if got[port] != v {
			t.Errorf("port %s is published on ${%s}, want ${%s}", port, got[port], v)
		}
	}
}

// aclUsers runs deploy/redis-acl.sh with the given passwords and returns
// its file's lines.
func aclUsers(t *testing.T, env map[string]string) ([]string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "users.acl")
	cmd := exec.Command("sh", "redis-acl.sh", out)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, msg)
	}
	b := readFile(t, out)
	if fi, err := os.Stat(out); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("the ACL file's mode is %v, want 0600", fi.Mode().Perm())
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n"), nil
}

var testRedisPasswords = map[string]string{
	"REDIS_INTAKE_PASSWORD": "intake-password-0123456789", "REDIS_WORKER_PASSWORD": "worker-password-0123456789",
	"REDIS_OPS_PASSWORD": "ops-password-0123456789",
}

// TestComposeRedisUsers: every LeadRelay service logs in to Redis as its
// own user, with its own password, and redis-acl.sh makes exactly those
// users, from the passwords the redis service is given.
func TestComposeRedisUsers(t *testing.T) {
	t.Parallel()
	_, services, _ := readCompose(t)
	lines, err := aclUsers(t, testRedisPasswords)
	if err != nil {
		t.Fatalf("redis-acl.sh: %v", err)
	}
	made := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "user" {
			t.Fatalf("ACL line %q", l)
		}
		made[f[1]] = f[2] == "on"
		if strings.Contains(l, "password-0123456789") {
			t.Errorf("the ACL file holds a password in clear: %q", l)
		}
	}
	if made["default"] {
		t.Error("the default user is on: Redis answers without a password")
	}
	urlRE := regexp.MustCompile(`^redis://(\w+):\$\{(REDIS_(\w+)_PASSWORD):\?[^}]*\}@redis:6379/0$`)
	for svc, user := range relayRoles {
		u := services[svc].env["LEADRELAY_REDIS_URL"]
		m := urlRE.FindStringSubmatch(u)
		switch {
		case m == nil:
			t.Errorf("%s: LEADRELAY_REDIS_URL %q: want redis://USER:${REDIS_USER_PASSWORD:?…}@redis:6379/0", svc, u)
		case m[1] != user || !strings.EqualFold(m[3], user):
			t.Errorf("%s logs in as %s with %s, want user %s with its own password", svc, m[1], m[2], user)
		case !made[user]:
			t.Errorf("%s logs in as %s, which redis-acl.sh does not make", svc, user)
		case !strings.HasPrefix(services["redis"].env[m[2]], "${"+m[2]+":?"):
			t.Errorf("the redis service does not get %s from the operator", m[2])
		}
	}
	short := map[string]string{}
	for k, v := range testRedisPasswords {
		short[k] = v
	}
	short["REDIS_WORKER_PASSWORD"] = "short"
	if _, err := aclUsers(t, short); err == nil {
		t.Error("redis-acl.sh accepted a 5-character password")
	}
}

// TestRedisACLRules loads the users redis-acl.sh makes into a real Redis:
// each logs in with its password only, reaches LeadRelay's and asynq's
// keys, scripts and INFO, and no other key and no administrative command.
func TestRedisACLRules(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()
	lines, err := aclUsers(t, testRedisPasswords)
	if err != nil {
		t.Fatalf("redis-acl.sh: %v", err)
	}
	admin := srv.Client()
	for _, l := range lines {
		f := strings.Fields(l)
		if f[1] == "default" {
			continue // last, or this connection loses its rights
		}
		args := []any{"ACL", "SETUSER"}
		for _, a := range f[1:] {
			args = append(args, a)
		}
		if err := admin.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "off").Err(); err != nil {
		t.Fatal(err)
	}
	anon := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { anon.Close() })
	if err := anon.Ping(ctx).Err(); err == nil {
		t.Error("Redis answers PING without a password")
	}
	for user, pwVar := range map[string]string{"intake": "REDIS_INTAKE_PASSWORD", "worker": "REDIS_WORKER_PASSWORD", "ops": "REDIS_OPS_PASSWORD"} {
		t.Run(user, func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: user, Password: testRedisPasswords[pwVar], MaxRetries: -1})
			t.Cleanup(func() { c.Close() })
			allowed := [][]any{
				{"SET", "leadrelay:{x}:lock", "1"},
				{"HSET", "asynq:{leads}:t:1", "state", "pending"},
				{"EVAL", "return redis.call('GET', KEYS[1])", "1", "leadrelay:{x}:lock"},
				{"INFO", "memory"},
				{"PUBLISH", "asynq:cancel", "1"},
				{"PUBLISH", "leadrelay:{leads}:wake", ""},
			}
			for _, cmd := range allowed {
				if err := c.Do(ctx, cmd...).Err(); err != nil && !errors.Is(err, redis.Nil) {
					t.Errorf("%v: %v", cmd, err)
				}
			}
			refused := [][]any{
				{"SET", "other:key", "1"}, {"FLUSHALL"}, {"KEYS", "*"}, {"CONFIG", "GET", "*"},
				{"ACL", "LIST"}, {"SAVE"}, {"CLIENT", "KILL", "ID", "999999"}, {"PUBLISH", "other", "1"},
			}
			for _, cmd := range refused {
				if err := c.Do(ctx, cmd...).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
					t.Errorf("%v: %v, want NOPERM", cmd, err)
				}
			}
			wrong := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: user, Password: "another-password-0123", MaxRetries: -1})
			t.Cleanup(func() { wrong.Close() })
			if err := wrong.Ping(ctx).Err(); err == nil {
				t.Error("logged in with a wrong password")
			}
		})
	}
}
