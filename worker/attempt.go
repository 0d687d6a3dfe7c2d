package worker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

func attemptKey(id string) string { return keyPrefix + "attempt:" + id }

// Attempt states in leadrelay:attempt:{id}. "sending" is written before
// every add (write-ahead), so a worker killed mid-call, or a marker that
// could not be written, leaves a trace that makes the next attempt
// reconcile instead of adding blindly.
const (
	stateSending   = "sending"   // an add was sent; outcome not recorded
	stateAmbiguous = "ambiguous" // an add was sent; the answer was unclear
	stateFailed    = "failed"    // the last add certainly stored nothing
)

// attempt is the reconcile state of a lead.
type attempt struct {
	state   string
	firstAt time.Time // first add sent
	sentAt  time.Time // last add sent
	sends   int
	dead    bool // the lead died once; a delivery must drop its dead-letter record
}

func parseAttempt(state, first, sent, sends string) attempt {
	ms := func(s string) time.Time {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	n, _ := strconv.Atoi(sends)
	return attempt{state: state, firstAt: ms(first), sentAt: ms(sent), sends: n}
}

// uncertain reports whether an earlier add may have stored the lead.
func (a attempt) uncertain() bool { return a.state == stateSending || a.state == stateAmbiguous }

// markSendingScript writes the attempt record before an add, unless the
// lead was delivered meanwhile (then it returns the marker).
// KEYS: delivered, attempt. ARGV: now ms, ttl ms.
var markSendingScript = redis.NewScript(`
local m = redis.call('GET', KEYS[1])
if m then return m end
redis.call('HSETNX', KEYS[2], 'first_at', ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'sending', 'sent_at', ARGV[1])
redis.call('HINCRBY', KEYS[2], 'sends', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return false
`)

// markSending records that an add is about to be sent. A non-nil marker
// means the lead is delivered already and must not be sent.
func (h *Handler) markSending(ctx context.Context, id string, now time.Time) (*Marker, error) {
	s, err := markSendingScript.Run(ctx, h.rdb, []string{deliveredKey(id), attemptKey(id)},
		now.UnixMilli(), h.o.DeliveredTTL.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseMarker(s)
}
