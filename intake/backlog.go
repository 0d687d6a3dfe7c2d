package intake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"leadrelay/internal/rdb"
	"leadrelay/producer"
)

// Backlog counts the leads that wait for delivery (queued, retrying or
// being delivered). The lead store (internal/rdb) implements it with a
// count per site and asynq's own queue sizes.
type Backlog interface {
	// Backlog returns the undelivered leads of site and of all sites.
	Backlog(ctx context.Context, site string) (sitePending, totalPending int64, err error)
}

// BacklogFunc adapts a function to Backlog.
type BacklogFunc func(ctx context.Context, site string) (sitePending, totalPending int64, err error)

// Backlog implements Backlog.
func (f BacklogFunc) Backlog(ctx context.Context, site string) (int64, int64, error) {
	return f(ctx, site)
}

// MemoryProbe reports Redis's memory: what it uses and its maxmemory
// (0: no limit). *RedisMemory implements it.
type MemoryProbe interface {
	Memory(ctx context.Context) (used, limit int64, err error)
}

// Capacity bounds what intake lets wait for delivery, so that one site, or
// all of them during a long CRM outage, cannot fill Redis: Redis runs
// noeviction, so a full Redis refuses every write, the workers' delivered
// markers included. The zero value bounds nothing.
type Capacity struct {
	// Backlog counts undelivered leads, for the check ahead of a batch.
	// The caps themselves are the publisher's (producer.Options), which
	// hold every lead to them; these copies size the batch check.
	Backlog Backlog
	// SiteMax is the most undelivered leads one site may have
	// (LEADRELAY_SITE_MAX_QUEUED); past it the site gets 429. 0: no cap.
	SiteMax int64
	// TotalMax is the most undelivered leads of all sites
	// (LEADRELAY_MAX_QUEUED); past it every site gets 503. 0: no cap.
	TotalMax int64
	// Memory reports Redis's memory. Nil: no memory guard.
	Memory MemoryProbe
	// MemoryShare is the share of Redis's maxmemory past which new leads
	// get 503 (LEADRELAY_REDIS_MEMORY_GUARD). What counts is Redis's
	// memory once every lead waiting is delivered: its used memory plus,
	// for each undelivered lead (Backlog), what delivery will add
	// (DeliveredGrowth). So the backlog always has room to drain, and the
	// rest is left for bookkeeping. 0: off.
	MemoryShare float64
	// DeliveredGrowth is the bytes a lead adds to Redis between queued and
	// delivered. Zero means rdb.DeliveredGrowth.
	DeliveredGrowth int64
	// RetryAfter is sent with the refusals. Zero means DefaultBacklogRetryAfter.
	RetryAfter time.Duration
	// Unsafe, when set and answering a problem, refuses every lead (503):
	// Redis may lose what it stores (it evicts, or keeps no append-only
	// file). The problem, which names the setting to change, is logged for
	// operators, never sent to sites. Nil: never refuses.
	Unsafe func() string
}

// DefaultBacklogRetryAfter is the Retry-After of a refusal for a full
// backlog: it drains at the CRM's pace, so coming back at once is useless.
const DefaultBacklogRetryAfter = 60 * time.Second

// roomFor checks, before anything of the request is stored, that Redis
// has room (the memory guard) and, for a batch of n > 1, that the backlog
// has room for all n. Each lead is held to the backlog caps again,
// atomically, when it is published (producer.BacklogFullError, answered
// by backlogFull); a single lead is checked only there, so its check
// costs no round trip of its own. When it may not, roomFor answers 429
// (the site's cap) or 503 (the global cap or the memory guard) with
// Retry-After in the surface's shape, and returns false: nothing was
// stored, the site sends again later. When the counts cannot be read it
// admits: the publish needs the same Redis and answers 503 itself if
// Redis is down.
func (h *handler) roomFor(w http.ResponseWriter, r *http.Request, site string, n int, answer answerFunc) bool {
	c := h.capacity
	if c.Unsafe != nil {
		if problem := c.Unsafe(); problem != "" {
			h.capLog.log(h.log, zap.ErrorLevel, "Redis may lose leads: refusing new leads", zap.String("fix", problem))
			h.refuseFull(w, r, http.StatusServiceUnavailable, "the relay cannot store leads safely right now; no lead was stored", answer)
			return false
		}
	}
	if c.Memory != nil && c.MemoryShare > 0 {
		m, err := h.memory.read(r.Context(), max(n, 1))
		switch {
		case err != nil:
			h.log.Warn("intake memory guard failed; request admitted", zap.Error(err))
		case m.full():
			h.capLog.log(h.log, zap.ErrorLevel, "Redis memory guard: refusing new leads; raise maxmemory or let the backlog drain",
				zap.Int64("used_memory", m.used), zap.Int64("pending", m.pending), zap.Int64("projected_memory", m.projected()),
				zap.Int64("maxmemory", m.limit), zap.Float64("guard_share", c.MemoryShare))
			h.refuseFull(w, r, http.StatusServiceUnavailable, "the relay's storage is nearly full; no lead was stored", answer)
			return false
		}
	}
	if n <= 1 || c.Backlog == nil || (c.SiteMax <= 0 && c.TotalMax <= 0) {
		return true
	}
	siteN, total, err := c.Backlog.Backlog(r.Context(), site)
	switch {
	case err != nil:
		h.log.Warn("intake backlog count failed; request admitted", zap.Error(err))
	case c.SiteMax > 0 && siteN+int64(n) > c.SiteMax:
		return !h.backlogFull(w, r, &producer.BacklogFullError{Site: site, Pending: siteN, Cap: c.SiteMax}, answer)
	case c.TotalMax > 0 && total+int64(n) > c.TotalMax:
		return !h.backlogFull(w, r, &producer.BacklogFullError{Site: site, Global: true, Pending: total, Cap: c.TotalMax}, answer)
	}
	return true
}

// backlogFull answers a lead or batch refused for a full backlog, if err
// is one, and reports whether it was.
func (h *handler) backlogFull(w http.ResponseWriter, r *http.Request, err error, answer answerFunc) bool {
	var bf *producer.BacklogFullError
	if !errors.As(err, &bf) {
		return false
	}
	if bf.Global {
		h.capLog.log(h.log, zap.ErrorLevel, "global backlog cap: refusing new leads", zap.Int64("pending", bf.Pending), zap.Int64("cap", bf.Cap))
		h.refuseFull(w, r, http.StatusServiceUnavailable, "the relay's backlog is full; no lead was stored", answer)
		return true
	}
	if bf.Bytes {
		h.capLog.log(h.log, zap.WarnLevel, "site's share of Redis memory: refusing its new leads", zap.String("site", bf.Site),
			zap.Int64("kept_bytes", bf.Pending), zap.Int64("share_bytes", bf.Cap))
		h.refuseFull(w, r, http.StatusTooManyRequests, shareFullText(bf), answer)
		return true
	}
	h.capLog.log(h.log, zap.WarnLevel, "site backlog cap: refusing new leads", zap.String("site", bf.Site), zap.Int64("pending", bf.Pending), zap.Int64("cap", bf.Cap))
	h.refuseFull(w, r, http.StatusTooManyRequests, fmt.Sprintf(
		"this site has %d undelivered leads, the most it may have waiting is %d; no lead was stored", bf.Pending, bf.Cap), answer)
	return true
}

// shareFullText is the answer to a site past its share of the relay's
// storage: what it keeps and its quota.
func shareFullText(bf *producer.BacklogFullError) string {
	return fmt.Sprintf("this site keeps %.1f MB in the relay's storage (its leads waiting and those delivered recently), "+
		"its share is %.1f MB; no lead was stored, send it again later", float64(bf.Pending)/1e6, float64(bf.Cap)/1e6)
}

// refuseFull answers a refusal for a full backlog or storage with
// Retry-After.
func (h *handler) refuseFull(w http.ResponseWriter, r *http.Request, status int, problem string, answer answerFunc) {
	retry := h.capacity.RetryAfter
	if retry <= 0 {
		retry = DefaultBacklogRetryAfter
	}
	secs := strconv.Itoa(int((retry + time.Second - 1) / time.Second))
	note(r, "", "", "backlog_full")
	w.Header().Set("Retry-After", secs)
	answer(w, status, problem+"; retry after "+secs+"s")
}

// everyMinute writes a log line at most once a minute per message: a
// refusal repeats with every request of a flood, and each request has its
// own line already (outcome backlog_full).
type everyMinute struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (e *everyMinute) log(l *zap.Logger, lvl zapcore.Level, msg string, fields ...zap.Field) {
	e.mu.Lock()
	now := time.Now()
	if e.last == nil {
		e.last = map[string]time.Time{}
	}
	quiet := now.Sub(e.last[msg]) < time.Minute
	if !quiet {
		e.last[msg] = now
	}
	e.mu.Unlock()
	if !quiet {
		l.Log(lvl, msg, fields...)
	}
}

// RedisMemory is a MemoryProbe reading INFO memory (of every primary, on
// a Cluster) at each call; intake's guard decides how often to call it.
type RedisMemory struct {
	rdb redis.UniversalClient
}

// NewRedisMemory returns a probe of rdb's memory.
func NewRedisMemory(rdb redis.UniversalClient) *RedisMemory {
	return &RedisMemory{rdb: rdb}
}

// Memory implements MemoryProbe.
func (m *RedisMemory) Memory(ctx context.Context) (int64, int64, error) {
	return m.read(ctx)
}

// read reads INFO memory. On a Redis Cluster it reads every primary and
// answers for the fullest (the largest share of its maxmemory, or of
// used memory when none has one): one full node refuses the writes of
// every lead whose keys hash to it.
func (m *RedisMemory) read(ctx context.Context) (int64, int64, error) {
	cc, ok := m.rdb.(*redis.ClusterClient)
	if !ok {
		info, err := m.rdb.Info(ctx, "memory").Result()
		if err != nil {
			return 0, 0, fmt.Errorf("redis INFO memory: %w", err)
		}
		return parseMemoryInfo(info)
	}
	var mu sync.Mutex
	var used, limit int64
	fuller := func(u, l int64) bool {
		switch {
		case l > 0 && limit > 0:
			return float64(u)/float64(l) > float64(used)/float64(limit)
		case l > 0 || limit > 0:
			return l > 0 // a node with a limit says more than one without
		}
		return u > used
	}
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		info, err := node.Info(ctx, "memory").Result()
		if err != nil {
			return fmt.Errorf("redis INFO memory of %s: %w", node.Options().Addr, err)
		}
		u, l, err := parseMemoryInfo(info)
		if err != nil {
			return err
		}
		mu.Lock()
		if fuller(u, l) {
			used, limit = u, l
		}
		mu.Unlock()
		return nil
	})
	return used, limit, err
}

// parseMemoryInfo reads used_memory and maxmemory from INFO memory.
func parseMemoryInfo(info string) (used, limit int64, err error) {
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_memory":
			used, err = strconv.ParseInt(v, 10, 64)
			found++
		case "maxmemory":
			limit, err = strconv.ParseInt(v, 10, 64)
			found++
		}
		if err != nil {
			return 0, 0, fmt.Errorf("redis INFO memory: %s: %w", k, err)
		}
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("redis INFO memory: used_memory or maxmemory missing")
	}
	return used, limit, nil
}

// memoryGuard reads Redis's memory and backlog (one INFO, one pipeline)
// for Capacity's guard. A reading serves at most memoryReuse leads within
// memoryReadEvery while its projection is far from the bound; within
// memoryNear of it every lead reads afresh. A 1 s reading let one intake
// take 1,600 leads in past it (issue 17.5: 0.89–0.93 of maxmemory with a
// 0.8 guard); now one process overshoots by at most memoryReuse leads far
// from the bound, and near it by the requests in flight.
type memoryGuard struct {
	c   Capacity
	now func() time.Time

	mu   sync.Mutex
	at   time.Time
	uses int // leads admitted on the reading
	last memoryReading
}

// Guard reading pace.
const (
	memoryReadEvery = time.Second
	memoryReuse     = 32
	// memoryNear: a projection past this share of the bound is read
	// afresh for every lead.
	memoryNear = 0.9
)

// memoryReading is one reading of the guard's figures.
type memoryReading struct {
	used, limit, pending int64
	growth               int64
	share                float64
}

// projected is Redis's used memory once every waiting lead is delivered.
func (m memoryReading) projected() int64 { return m.used + m.pending*m.growth }

// bound is the memory the guard allows, 0 without maxmemory.
func (m memoryReading) bound() float64 { return m.share * float64(m.limit) }

// full reports whether a new lead must be refused.
func (m memoryReading) full() bool { return m.limit > 0 && float64(m.projected()) >= m.bound() }

// near reports whether the reading is too close to the bound to reuse.
func (m memoryReading) near() bool {
	return m.limit > 0 && float64(m.projected()) >= memoryNear*m.bound()
}

func newMemoryGuard(c Capacity) *memoryGuard {
	if c.DeliveredGrowth <= 0 {
		c.DeliveredGrowth = rdb.DeliveredGrowth
	}
	return &memoryGuard{c: c, now: time.Now}
}

// read returns the reading for a request of n leads: the last one while
// it is fresh, far from the bound and has served fewer than memoryReuse
// leads, else a new one.
func (g *memoryGuard) read(ctx context.Context, n int) (memoryReading, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.at.IsZero() && g.now().Sub(g.at) < memoryReadEvery && g.uses+n <= memoryReuse && !g.last.near() {
		g.uses += n
		return g.last, nil
	}
	used, limit, err := g.c.Memory.Memory(ctx)
	if err != nil {
		return memoryReading{}, err
	}
	m := memoryReading{used: used, limit: limit, growth: g.c.DeliveredGrowth, share: g.c.MemoryShare}
	if limit > 0 && g.c.Backlog != nil {
		if _, m.pending, err = g.c.Backlog.Backlog(ctx, ""); err != nil {
			return memoryReading{}, err
		}
	}
	g.at, g.last, g.uses = g.now(), m, n
	return m, nil
}
