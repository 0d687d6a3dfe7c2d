package worker

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The handler asks the breaker inside beginScript; tests ask it alone.

// breakerAllowScript runs breakerAllowLua alone. ARGV: now ms, probe ttl ms.
var breakerAllowScript = redis.NewScript(breakerAllowLua +
	`return breaker_allow(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))`)

// breakerAllow asks whether a CRM call may go ahead.
func (h *Handler) breakerAllow(ctx context.Context) (breakerTicket, error) {
	r, err := breakerAllowScript.Run(ctx, h.rdb, []string{breakerKey},
		h.o.Clock().UnixMilli(), h.o.CRMTimeout.Milliseconds()).Int64Slice()
	if err != nil || len(r) != 3 {
		return breakerTicket{}, err
	}
	return h.ticket(r[0], r[1], r[2]), nil
}
