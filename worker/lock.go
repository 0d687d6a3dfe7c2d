package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

func lockKey(id string) string { return keyPrefix + "lock:" + id }

// beginScript is a delivery's first Redis round trip, and a delivered
// lead's only one: if the lead is delivered, return the marker; else take the lock
// (SET NX PX) and return the attempt record and the circuit breaker's
// answer (breakerAllowLua).
// KEYS: delivered, lock, attempt, breaker. ARGV: token, ttl ms, now ms,
// probe ttl ms.
var beginScript = redis.NewScript(breakerAllowLua + `
local m = redis.call('GET', KEYS[1])
if m then return {'delivered', m} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'busy', tostring(redis.call('PTTL', KEYS[2]))}
end
local a = redis.call('HMGET', KEYS[3], 'state', 'first_at', 'sent_at', 'sends', 'dead')
local b = breaker_allow(KEYS[4], tonumber(ARGV[3]), tonumber(ARGV[4]))
return {'locked', a[1] or '', a[2] or '', a[3] or '', a[4] or '', a[5] or '',
  tostring(b[1]), tostring(b[2]), tostring(b[3])}
`)

// renewScript extends the lock if we still hold it.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript sets the attempt state (unless ARGV[2] is empty or the
// record is gone) and drops the lock if we still hold it.
// KEYS: lock, attempt. ARGV: token, state.
var releaseScript = redis.NewScript(`
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', ARGV[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

// gate is what begin found.
type gate struct {
	marker  *Marker       // the lead is delivered
	busy    time.Duration // another worker holds the lock for this long
	attempt attempt       // when locked: the lead's attempt record
	ticket  breakerTicket // when locked: the circuit breaker's answer
}

// begin checks the delivered marker and takes the lead's lock in one round
// trip. Exactly one of marker, busy>0 or a held lock results.
func (h *Handler) begin(ctx context.Context, id, token string) (gate, error) {
	res, err := beginScript.Run(ctx, h.rdb, []string{deliveredKey(id), lockKey(id), attemptKey(id), breakerKey},
		token, h.o.LockTTL.Milliseconds(), h.o.Clock().UnixMilli(), h.o.CRMTimeout.Milliseconds()).StringSlice()
	if err != nil {
		return gate{}, err
	}
	switch {
	case len(res) == 2 && res[0] == "delivered":
		m, err := parseMarker(res[1])
		return gate{marker: m}, err
	case len(res) == 2 && res[0] == "busy":
		ms, _ := strconv.ParseInt(res[1], 10, 64)
		return gate{busy: max(time.Duration(ms)*time.Millisecond, time.Millisecond)}, nil
	case len(res) == 9 && res[0] == "locked":
		n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
		a := parseAttempt(res[1], res[2], res[3], res[4])
		a.dead = res[5] == "1"
		return gate{attempt: a, ticket: h.ticket(n(res[6]), n(res[7]), n(res[8]))}, nil
	}
	return gate{}, fmt.Errorf("begin: unexpected answer %q", res)
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lease keeps a held lock alive until stopped: the CRM call may outlast
// LockTTL, and a lock that expired mid-call would let a second worker in.
type lease struct {
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
}

func (h *Handler) keepLock(ctx context.Context, id, token string, log *zap.Logger) *lease {
	l := &lease{stopCh: make(chan struct{}), done: make(chan struct{})}
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer close(l.done)
		t := time.NewTicker(h.o.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stopCh:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(ctx, h.o.LockTTL/3)
				n, err := renewScript.Run(rctx, h.rdb, []string{lockKey(id)}, token, h.o.LockTTL.Milliseconds()).Int()
				cancel()
				switch {
				case err != nil:
					log.Warn("lock renewal failed", zap.Error(err))
				case n == 0:
					// Another worker may take over, but it waits CRMTimeout
					// after our send before it reconciles.
					log.Warn("lock lost during delivery")
					return
				}
			}
		}
	}()
	return l
}

// stop ends the renewal and waits for it; safe to call twice.
func (l *lease) stop() {
	l.stopOnce.Do(func() { close(l.stopCh) })
	<-l.done
}

// release records the attempt state (if state != "") and drops our lock.
func (h *Handler) release(ctx context.Context, id, token, state string) error {
	return releaseScript.Run(ctx, h.rdb, []string{lockKey(id), attemptKey(id)}, token, state).Err()
}
