package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"
)

// redisLog receives go-redis's own log lines (pool dial failures, eight of
// them per unreachable Redis), at debug: the caller already reports an
// unreachable Redis once, in its own words. Nil drops them (ctl).
var redisLog atomic.Pointer[zap.Logger]

// redisLogger is go-redis's logger (redis.SetLogger), routed to redisLog.
type redisLogger struct{}

// Printf logs one go-redis line at debug.
func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	if l := redisLog.Load(); l != nil {
		l.Debug(fmt.Sprintf(format, v...))
	}
}
