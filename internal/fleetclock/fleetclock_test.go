package fleetclock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// redisAt is a Source whose clock is the real one shifted by off, or
// fails with err.
type redisAt struct {
	mu    sync.Mutex
	off   time.Duration
	err   error
	calls int
}

func (r *redisAt) Time(context.Context) (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return time.Now().Add(r.off), r.err
}

// TestRead: a clock on a skewed host reads Redis's time from its first
// read on, measures once for concurrent first readers, and keeps the
// host's clock while Redis cannot be read.
func TestRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		host time.Duration // the host's clock against the real one
		src  *redisAt
		want time.Duration // Now against the real clock
	}{
		{"host ahead", 5 * time.Minute, &redisAt{}, 0},
		{"host behind", -5 * time.Minute, &redisAt{}, 0},
		{"redis ahead", 0, &redisAt{off: time.Hour}, time.Hour},
		{"redis unreachable", 5 * time.Minute, &redisAt{err: errors.New("down")}, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := New(func() time.Time { return time.Now().Add(tc.host) })
			var wg sync.WaitGroup
			reads := make([]time.Time, 8)
			for i := range reads {
				wg.Go(func() { reads[i] = c.Read(context.Background(), tc.src, nil, time.Second) })
			}
			wg.Wait()
			for _, got := range reads {
				if d := got.Sub(time.Now().Add(tc.want)); d < -time.Second || d > time.Second {
					t.Errorf("read %s off the wanted time", d)
				}
			}
			if tc.src.err == nil && tc.src.calls != 1 {
				t.Errorf("%d measurements for 8 first reads, want 1", tc.src.calls)
			}
		})
	}
}
