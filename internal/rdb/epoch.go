package rdb

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

var epochCheckScript = load("epoch_check")

// Epoch is what EpochCheck found.
type Epoch struct {
	// Count is the fleet epoch after this check's increment.
	Count int64
	// Rollback is the rollback a worker last found, within the guard;
	// zero when none did.
	Rollback Rollback
	// Found: this check found it.
	Found bool
}

// Rollback is a Redis found back with older data (RollbackKey).
type Rollback struct {
	// At is when it was found; zero for none.
	At time.Time
	// Floor is the highest CRM id the old data recorded (0: unknown, on a
	// Cluster): every lead sent since its snapshot has a higher one.
	Floor int64
}

// parseRollback reads RollbackKey's "ms|floor".
func parseRollback(v string) Rollback {
	at, floor, _ := strings.Cut(v, "|")
	ms, _ := strconv.ParseInt(at, 10, 64)
	if ms <= 0 {
		return Rollback{}
	}
	f, _ := strconv.ParseInt(floor, 10, 64)
	return Rollback{At: time.UnixMilli(ms), Floor: f}
}

// EpochCheck counts the fleet epoch on from mine, the count this worker
// last got (0: none yet), and finds a Redis that came back with older
// data: a lower count, or none. Finding it records now for guard
// (RollbackKey), with the old data's highest CRM id on a single primary.
func (s *Store) EpochCheck(ctx context.Context, mine int64, now time.Time, guard time.Duration) (Epoch, error) {
	keys := []string{EpochKey, RollbackKey}
	if !s.cluster {
		keys = append(keys, JournalMetaKey)
	}
	r, err := epochCheckScript.Run(ctx, s.c, keys, mine, ms(now), guard.Milliseconds()).Slice()
	if err != nil {
		return Epoch{}, err
	}
	if len(r) != 3 {
		return Epoch{}, errors.New("rdb: epoch_check answered a wrong count")
	}
	count, _ := r[0].(int64)
	found, _ := r[2].(int64)
	return Epoch{Count: count, Rollback: parseRollback(str(r[1])), Found: found == 1}, nil
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
