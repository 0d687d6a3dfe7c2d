package app

import (
	"context"
	"sync"
	"time"

	"leadrelay/config"
	"leadrelay/intake"
)

// shareReadEvery is how long a reading of Redis's maxmemory serves the
// sites' shares: it changes only when an operator changes it.
const shareReadEvery = 10 * time.Second

// siteShare is the bytes of Redis's memory one site may keep
// (producer.Options.SiteShare): LEADRELAY_SITE_MEMORY_SHARE of the memory
// guard's bound, from Redis's maxmemory, read at most every
// shareReadEvery. Nil when there is no share: the embedded demo, a guard
// or share of 0. Without maxmemory, or while it cannot be read, a site has
// no share (0) and the global guard alone stands.
func siteShare(rds *Redis, cfg config.Config) func(context.Context) int64 {
	in := cfg.Intake
	if rds.Embedded || in.MemoryGuard == 0 || in.SiteMemoryShare == 0 {
		return nil
	}
	probe := intake.NewRedisMemory(rds.Client)
	var mu sync.Mutex
	var at time.Time
	var share int64
	return func(ctx context.Context) int64 {
		mu.Lock()
		defer mu.Unlock()
		if !at.IsZero() && time.Since(at) < shareReadEvery {
			return share
		}
		if _, limit, err := probe.Memory(ctx); err == nil {
			share, at = int64(float64(limit)*in.MemoryGuard*in.SiteMemoryShare), time.Now()
		}
		return share
	}
}
