package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadRedis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want Redis
	}{
		{"embedded", nil, Redis{}},
		{"single", map[string]string{"LEADRELAY_REDIS_URL": "redis://r:6380/2"},
			Redis{Mode: RedisSingle, Addrs: []string{"r:6380"}, DB: 2}},
		{"single default port, ACL user kept", map[string]string{"LEADRELAY_REDIS_URL": "rediss://relay:p%40ss@r/"},
			Redis{Mode: RedisSingle, Addrs: []string{"r:6379"}, Username: "relay", Password: "p@ss", TLS: true}},
		{"sentinel", map[string]string{"LEADRELAY_REDIS_URL": "redis-sentinel://:pw@s1:26379,s2,[::1]:26380/1?master=mymaster"},
			Redis{Mode: RedisSentinel, Addrs: []string{"s1:26379", "s2:26379", "[::1]:26380"}, MasterName: "mymaster", Password: "pw", DB: 1}},
		{"sentinel with its own password", map[string]string{"LEADRELAY_REDIS_URL": "redis-sentinel://s1?master=m", "LEADRELAY_REDIS_SENTINEL_PASSWORD": "sp"},
			Redis{Mode: RedisSentinel, Addrs: []string{"s1:26379"}, MasterName: "m", SentinelPassword: "sp"}},
		{"cluster url", map[string]string{"LEADRELAY_REDIS_URL": "redis-cluster://u:p@c1:7000,c2:7001"},
			Redis{Mode: RedisCluster, Addrs: []string{"c1:7000", "c2:7001"}, Username: "u", Password: "p"}},
		{"cluster list", map[string]string{"LEADRELAY_REDIS_CLUSTER": "c1:7000, c2:7001,c3"},
			Redis{Mode: RedisCluster, Addrs: []string{"c1:7000", "c2:7001", "c3:6379"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tc.env)
			got := c.Redis
			if got.URL != tc.env["LEADRELAY_REDIS_URL"] || got.WaitTimeout != time.Second {
				t.Errorf("Redis.URL = %q, WaitTimeout = %s", got.URL, got.WaitTimeout)
			}
			got.URL, got.WaitTimeout = "", 0
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Redis = %+v, want %+v", got, tc.want)
			}
			if c.EmbeddedRedis() != (tc.want.Mode == RedisEmbedded) {
				t.Errorf("EmbeddedRedis() = %v", c.EmbeddedRedis())
			}
			if strings.Contains(c.Redis.String(), "pw") || strings.Contains(c.Redis.String(), "p@ss") {
				t.Errorf("String() shows the password: %s", c.Redis)
			}
		})
	}
}

func TestLoadRedisErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cret/wi7h?sla5h"
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no scheme", map[string]string{"LEADRELAY_REDIS_URL": "localhost:6379"}, "LEADRELAY_REDIS_URL must look like"},
		{"unknown scheme", map[string]string{"LEADRELAY_REDIS_URL": "memcache://m"}, "LEADRELAY_REDIS_URL must look like"},
		{"sentinel without master", map[string]string{"LEADRELAY_REDIS_URL": "redis-sentinel://s1,s2/0"}, "needs ?master=NAME"},
		{"both set", map[string]string{"LEADRELAY_REDIS_URL": "redis://r", "LEADRELAY_REDIS_CLUSTER": "c1:7000"}, "both set"},
		{"cluster db", map[string]string{"LEADRELAY_REDIS_URL": "redis-cluster://c1/3"}, "only database 0"},
		{"bad db", map[string]string{"LEADRELAY_REDIS_URL": "redis://r/x"}, "database number"},
		{"unknown query", map[string]string{"LEADRELAY_REDIS_URL": "redis://r/0?master=m"}, `query parameter "master"`},
		{"several hosts", map[string]string{"LEADRELAY_REDIS_URL": "redis://r1,r2"}, "names several hosts"},
		{"bad cluster address", map[string]string{"LEADRELAY_REDIS_CLUSTER": "c1:70000"}, `address "c1:70000"`},
		{"wait in a cluster", map[string]string{"LEADRELAY_REDIS_CLUSTER": "c1:7000", "LEADRELAY_REDIS_WAIT_REPLICAS": "1"}, "not supported with a Redis Cluster"},
		{"sentinel password without sentinel", map[string]string{"LEADRELAY_REDIS_URL": "redis://r", "LEADRELAY_REDIS_SENTINEL_PASSWORD": "x"}, "LEADRELAY_REDIS_SENTINEL_PASSWORD needs"},
		{"unescaped password", map[string]string{"LEADRELAY_REDIS_URL": "redis://u:" + secret + "@r:6379/0"}, "unescaped special characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loadFails(t, tc.env, []string{tc.want}, []string{"s3cret", "wi7h", "sla5h"})
		})
	}
}
