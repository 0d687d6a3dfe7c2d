package rdb

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

var keylessScript = load("keyless")

// Keyless is the identity of a lead site sent without an idempotency key,
// whose content digest's key is digestKey: a new one, digestKey and now,
// that lasts window from this first submission, or the one a submission
// of the same content within the window opened, whose repeat is counted
// (repeats > 0 then: how many so far).
func (s *Store) Keyless(ctx context.Context, site, digestKey string, now time.Time, window time.Duration) (id string, repeats int, err error) {
	fresh := digestKey + "@" + strconv.FormatInt(now.UnixMilli(), 10)
	v, err := keylessScript.Run(ctx, s.c, []string{KeylessKey(site, digestKey)}, fresh, window.Milliseconds()).Slice()
	if err != nil {
		return "", 0, err
	}
	if len(v) != 2 {
		return "", 0, fmt.Errorf("rdb: keyless: unexpected answer %v", v)
	}
	id, _ = v[0].(string)
	n, _ := v[1].(int64)
	return id, int(n), nil
}
