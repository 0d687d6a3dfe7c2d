package app

import (
	"reflect"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TestRedisClients: every topology gives a go-redis client and an asynq
// option of the same kind, both with the ACL user (asynq.ParseRedisURI
// would drop it).
func TestRedisClients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		url        string
		wantClient any
		wantOpt    asynq.RedisConnOpt
	}{
		{"single", "redis://relay:pw@127.0.0.1:6390/3", &redis.Client{},
			asynq.RedisClientOpt{Addr: "127.0.0.1:6390", Username: "relay", Password: "pw", DB: 3}},
		{"sentinel", "redis-sentinel://relay:pw@127.0.0.1:26390,127.0.0.1:26391/2?master=mymaster", &redis.Client{},
			asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"127.0.0.1:26390", "127.0.0.1:26391"},
				Username: "relay", Password: "pw", DB: 2}},
		{"cluster", "redis-cluster://relay:pw@127.0.0.1:7390,127.0.0.1:7391", &redis.ClusterClient{},
			asynq.RedisClusterClientOpt{Addrs: []string{"127.0.0.1:7390", "127.0.0.1:7391"}, Username: "relay", Password: "pw"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := loadConfig(t, map[string]string{"LEADRELAY_REDIS_URL": tc.url})
			c, opt := redisClients(cfg.Redis, 0)
			t.Cleanup(func() { c.Close() })
			if reflect.TypeOf(c) != reflect.TypeOf(tc.wantClient) {
				t.Errorf("client is %T, want %T", c, tc.wantClient)
			}
			if !reflect.DeepEqual(opt, tc.wantOpt) {
				t.Errorf("asynq option = %+v, want %+v", opt, tc.wantOpt)
			}
			mc, ok := opt.MakeRedisClient().(redis.UniversalClient)
			if !ok {
				t.Fatalf("asynqmon cannot use %T", opt)
			}
			mc.Close()
		})
	}
}
