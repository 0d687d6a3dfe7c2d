package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrTaskNotOnPrimary: the task a lead was enqueued as is not on the
// primary the replica wait reached (a Sentinel failover between the
// enqueue and the wait may have lost it with the old primary).
var ErrTaskNotOnPrimary = errors.New("rdb: the lead's task is not on the current primary (failover?)")

// ReplicasError says that fewer replicas than asked confirmed a write
// within the timeout.
type ReplicasError struct {
	Got, Want int
	Timeout   time.Duration
}

func (e *ReplicasError) Error() string {
	return fmt.Sprintf("rdb: %d of %d replicas within %s", e.Got, e.Want, e.Timeout)
}

// DefaultSyncTimeout is the bound of a replica wait unless configured
// otherwise (LEADRELAY_REDIS_WAIT_TIMEOUT).
const DefaultSyncTimeout = time.Second

// Sync waits until n replicas hold every write made so far on this Redis
// primary, within timeout; a shortfall is a *ReplicasError. WAIT counts
// the writes of its own connection, so a write goes first on a dedicated
// one: replication is one ordered stream, so replicas that hold it hold
// every earlier write too. It needs a single-primary client (plain or
// Sentinel failover).
func (s *Store) Sync(ctx context.Context, n int, timeout time.Duration) error {
	return s.sync(ctx, n, timeout, "")
}

// SyncTask is Sync for a lead just enqueued on queue as task id: the
// wait's connection first checks that the task is on the primary it
// reached (else ErrTaskNotOnPrimary), since replicas holding that
// primary's writes prove nothing of a task the primary never had.
func (s *Store) SyncTask(ctx context.Context, queue, id string, n int, timeout time.Duration) error {
	return s.sync(ctx, n, timeout, AsynqTaskKey(queue, id))
}

func (s *Store) sync(ctx context.Context, n int, timeout time.Duration, mustHave string) error {
	cc, ok := s.c.(interface{ Conn() *redis.Conn })
	if !ok {
		return fmt.Errorf("rdb: replica wait needs a single-primary client (plain or Sentinel failover), got %T", s.c)
	}
	conn := cc.Conn()
	defer conn.Close()
	if mustHave != "" {
		found, err := conn.Exists(ctx, mustHave).Result()
		if err != nil {
			return err
		}
		if found != 1 {
			return ErrTaskNotOnPrimary
		}
	}
	if err := conn.Incr(ctx, WaitSeqKey).Err(); err != nil {
		return fmt.Errorf("rdb: mark for replica wait: %w", err)
	}
	got, err := conn.Wait(ctx, n, timeout).Result()
	if err != nil {
		return fmt.Errorf("rdb: wait for replicas: %w", err)
	}
	if got < int64(n) {
		return &ReplicasError{Got: int(got), Want: n, Timeout: timeout}
	}
	return nil
}
