package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/internal/rdb"
)

// durabilityEvery is how often a running process reads Redis's eviction
// policy and persistence again: CONFIG SET changes them without a restart.
const durabilityEvery = 30 * time.Second

// checkTimeout bounds one reading of Redis's durability.
const checkTimeout = 5 * time.Second

// durability watches that Redis keeps what LeadRelay writes: a policy
// that evicts nothing (a full Redis evicting under allkeys-lru lost 66 of
// 2,748 acknowledged leads in one run, issue 17), and an append-only file
// (a restart from a snapshot lost the leads acknowledged since and
// delivered again those delivered since). Either may be allowed
// explicitly (LEADRELAY_REDIS_ALLOW_EVICTION, LEADRELAY_REDIS_ALLOW_NO_AOF).
// Not used with the embedded demo Redis, which keeps nothing anyway.
type durability struct {
	store                     *rdb.Store
	allowEviction, allowNoAOF bool
	log                       *zap.Logger

	mu      sync.Mutex
	problem string // what is wrong now, "" nothing
	known   bool   // Redis was read at least once
}

func newDurability(rds *Redis, cfg config.Config, log *zap.Logger) *durability {
	return &durability{store: rdb.New(rds.Client), allowEviction: cfg.Redis.AllowEviction,
		allowNoAOF: cfg.Redis.AllowNoAOF, log: log}
}

// problemOf is the first thing wrong with how Redis keeps data, for
// operators, naming the setting to change, or "".
func (g *durability) problemOf(ds []rdb.Durability) string {
	for _, d := range ds {
		if d.Evicts() && !g.allowEviction {
			return fmt.Sprintf("Redis %s evicts keys when it is full (maxmemory-policy %s): queued leads and "+
				"delivered markers could vanish. Set maxmemory-policy noeviction (deploy/redis.conf), "+
				"or LEADRELAY_REDIS_ALLOW_EVICTION=true to run anyway", d.Node, d.Policy)
		}
		if !d.AOF && !g.allowNoAOF {
			return fmt.Sprintf("Redis %s keeps no append-only file (appendonly no): a restart goes back to its "+
				"last snapshot, losing the leads acknowledged since and delivering some twice. Set appendonly yes "+
				"(deploy/redis.conf), or LEADRELAY_REDIS_ALLOW_NO_AOF=true to run anyway", d.Node)
		}
	}
	return ""
}

// check reads Redis and records what is wrong, logging each change: an
// error when a problem appears, a line when it is gone. It returns the
// problem, or the error of a Redis that could not be read (the last
// reading stands).
func (g *durability) check(ctx context.Context) (string, error) {
	ds, err := g.store.Durability(ctx)
	if err != nil {
		return g.Problem(), err
	}
	p := g.problemOf(ds)
	g.mu.Lock()
	was, first := g.problem, !g.known
	g.problem, g.known = p, true
	g.mu.Unlock()
	switch {
	case p != "" && p != was:
		g.log.Error("Redis may lose leads: intake refuses new leads until it is fixed", zap.String("fix", p))
	case p == "" && was != "":
		g.log.Info("Redis keeps leads again: intake accepts new leads")
	}
	if first && p == "" {
		g.warnAllowed(ds)
	}
	return p, nil
}

// warnAllowed says once, at the first reading, what an override lets
// through.
func (g *durability) warnAllowed(ds []rdb.Durability) {
	for _, d := range ds {
		if d.Evicts() {
			g.log.Warn("LEADRELAY_REDIS_ALLOW_EVICTION: Redis may evict queued leads and delivered markers when full",
				zap.String("redis", d.Node), zap.String("maxmemory_policy", d.Policy))
		}
		if !d.AOF {
			g.log.Warn("LEADRELAY_REDIS_ALLOW_NO_AOF: a restart of Redis from a snapshot loses the leads acknowledged since",
				zap.String("redis", d.Node))
		}
	}
}

// Problem is what is wrong with Redis as last read, or "".
func (g *durability) Problem() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.problem
}

// start checks Redis before the process serves anything: a Redis that
// may lose leads stops the start with the problem; one that cannot be
// read yet (it may come up after us) is read again by watch.
func (g *durability) start(ctx context.Context) error {
	p, err := g.checkWithin(ctx)
	switch {
	case err != nil:
		g.log.Warn("Redis's eviction policy and persistence unknown at start; read again every 30s", zap.Error(err))
	case p != "":
		return errors.New(p)
	}
	return nil
}

// watch checks Redis again now (start may not have read it) and every
// durabilityEvery until ctx ends.
func (g *durability) watch(ctx context.Context) {
	every(ctx, durabilityEvery, func(ctx context.Context) {
		if _, err := g.checkWithin(ctx); err != nil {
			g.log.Debug("Redis's eviction policy and persistence not read", zap.Error(err))
		}
	})
}

// checkWithin is check bounded by checkTimeout, so a Redis that does not
// answer neither holds up the start nor stacks up readings.
func (g *durability) checkWithin(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	return g.check(ctx)
}

// ready is the readiness check: not ready while Redis may lose leads.
func (g *durability) ready(context.Context) error {
	if p := g.Problem(); p != "" {
		return errors.New(p)
	}
	return nil
}
