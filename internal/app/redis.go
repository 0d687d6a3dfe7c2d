package app

import (
	"context"
	"fmt"
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
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("LEADRELAY_REDIS_URL: %w", err)
	}
	connOpt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("LEADRELAY_REDIS_URL: %w", err)
	}
	c := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		// Not fatal: Redis may come up after us. Intake answers 503 until it does.
		log.Error("redis is not reachable yet", zap.String("addr", opt.Addr), zap.Error(err))
	}
	return &Redis{Client: c, ConnOpt: connOpt}, nil
}

// Close closes the client and stops an embedded server.
func (r *Redis) Close() error {
	err := r.Client.Close()
	if r.mini != nil {
		r.mini.Close()
	}
	return err
}
