package rdb

import (
	"context"
	"errors"
	"strings"
	"time"
)

var epochCheckScript = load("epoch_check")

// Epoch is what EpochCheck found.
type Epoch struct {
	// Count is the fleet epoch after this check's increment.
	Count int64
	// Since is when a worker last found Redis rolled back, within the
	// guard; zero when none did.
	Since time.Time
	// Found: this check found it.
	Found bool
}

// EpochCheck counts the fleet epoch on from mine, the count this worker
// last got (0: none yet), and finds a Redis that came back with older
// data: a lower count, none, or (restarted: Redis's run id changed since
// the last check) no count since this worker's. Finding it records now
// for guard (RollbackKey).
func (s *Store) EpochCheck(ctx context.Context, mine int64, restarted bool, now time.Time, guard time.Duration) (Epoch, error) {
	r, err := epochCheckScript.Run(ctx, s.c, []string{EpochKey, RollbackKey},
		mine, boolArg(restarted), ms(now), guard.Milliseconds()).Int64Slice()
	if err != nil {
		return Epoch{}, err
	}
	if len(r) != 3 {
		return Epoch{}, errors.New("rdb: epoch_check answered a wrong count")
	}
	e := Epoch{Count: r[0], Found: r[2] == 1}
	if r[1] > 0 {
		e.Since = time.UnixMilli(r[1])
	}
	return e, nil
}

// RunID is the Redis server's run id (INFO server), which changes when it
// restarts or another server answers (a failover). "" on a Cluster, where
// a command reaches any primary.
func (s *Store) RunID(ctx context.Context) (string, error) {
	if s.cluster {
		return "", nil
	}
	info, err := s.c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v, nil
		}
	}
	return "", nil
}
