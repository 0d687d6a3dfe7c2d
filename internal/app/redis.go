package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"runtime"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/config"
)

// Redis is the connection every part shares, plus what asynqmon needs to
// open its own.
type Redis struct {
	// Client is the shared go-redis client.
	Client redis.UniversalClient
	// ConnOpt is the same server as an asynq connection option (for asynqmon).
	ConnOpt asynq.RedisConnOpt
	// Embedded is true when Client talks to the in-process miniredis.
	Embedded bool
	mini     *miniredis.Miniredis
}

// OpenRedis connects to LEADRELAY_REDIS_URL, or, when it is empty and
// allowEmbedded is set, starts an in-process miniredis and warns that
// nothing in it survives the process.
func OpenRedis(ctx context.Context, cfg config.Config, allowEmbedded bool, log *zap.Logger) (*Redis, error) {
	if cfg.EmbeddedRedis() {
		if !allowEmbedded {
			return nil, fmt.Errorf("LEADRELAY_REDIS_URL is required for this command (only serve can embed Redis)")
		}
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		log.Warn("EMBEDDED REDIS: leads are kept in memory only and are LOST when this process stops; set LEADRELAY_REDIS_URL for production",
			zap.String("addr", m.Addr()))
		return &Redis{
			Client:   redis.NewClient(&redis.Options{Addr: m.Addr()}),
			ConnOpt:  asynq.RedisClientOpt{Addr: m.Addr()},
			Embedded: true,
			mini:     m,
		}, nil
	}
	c, connOpt := redisClients(cfg.Redis, redisPoolSize(cfg))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		// Not fatal: Redis may come up after us. Intake answers 503 until it does.
		log.Error("redis is not reachable yet", zap.Stringer("redis", cfg.Redis), zap.Error(err))
	}
	return &Redis{Client: c, ConnOpt: connOpt}, nil
}

// redisClients builds, from one parsed target, the go-redis client for
// LeadRelay's own keys and the asynq connection option asynqmon opens its
// own client from, so both follow the same primary or cluster. A failover
// client asks the sentinels for the primary and follows it after a
// failover; a cluster client routes each key to its slot's node.
func redisClients(r config.Redis, poolSize int) (redis.UniversalClient, asynq.RedisConnOpt) {
	var tlsConf *tls.Config
	if r.TLS {
		// No ServerName: crypto/tls checks each connection against the host
		// it dialed, which is what several hosts need.
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	switch r.Mode {
	case config.RedisSentinel:
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: r.MasterName, SentinelAddrs: r.Addrs, SentinelPassword: r.SentinelPassword,
			Username: r.Username, Password: r.Password, DB: r.DB, TLSConfig: tlsConf, PoolSize: poolSize,
		})
		return c, asynq.RedisFailoverClientOpt{
			MasterName: r.MasterName, SentinelAddrs: r.Addrs, SentinelPassword: r.SentinelPassword,
			Username: r.Username, Password: r.Password, DB: r.DB, TLSConfig: tlsConf,
		}
	case config.RedisCluster:
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: r.Addrs, Username: r.Username, Password: r.Password, TLSConfig: tlsConf, PoolSize: poolSize,
		})
		return c, asynq.RedisClusterClientOpt{
			Addrs: r.Addrs, Username: r.Username, Password: r.Password, TLSConfig: tlsConf,
		}
	default:
		c := redis.NewClient(&redis.Options{
			Addr: r.Addrs[0], Username: r.Username, Password: r.Password, DB: r.DB, TLSConfig: tlsConf, PoolSize: poolSize,
		})
		return c, asynq.RedisClientOpt{
			Addr: r.Addrs[0], Username: r.Username, Password: r.Password, DB: r.DB, TLSConfig: tlsConf,
		}
	}
}

// redisPoolSize is the most connections the shared client opens (lazily:
// an unused cap costs nothing). go-redis's default, 10 per CPU, made 32
// intake clients or 40 deliveries wait for a connection. A delivery holds
// at most two at once (its bookkeeping and its lock renewal), and asynq's
// own loops need about a dozen; intake needs one per request in flight.
func redisPoolSize(cfg config.Config) int {
	return max(10*runtime.GOMAXPROCS(0), 2*cfg.Worker.Concurrency+16, 64)
}

// Close closes the client and stops an embedded server.
func (r *Redis) Close() error {
	err := r.Client.Close()
	if r.mini != nil {
		r.mini.Close()
	}
	return err
}
