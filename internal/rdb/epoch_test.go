package rdb

import (
	"testing"
	"time"
)

// TestEpochRefindKeepsFloor: two workers whose counts differ find one
// rollback in turn; deliveries between their checks raise crm_top, and
// the second find must not raise the floor with it, or look-ups stop
// above leads the old data forgot and those are added again.
func TestEpochRefindKeepsFloor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, rc := startStore(t)
	now := time.Now()
	tests := []struct {
		name      string
		mine      int64 // the checking worker's last count
		crmTop    int64 // journal meta's crm_top at the check
		wantFound bool
		wantFloor int64
	}{
		{"the first worker finds the rollback", 10, 100, true, 100},
		{"deliveries since raised crm_top; a worker that counted further finds it again", 50, 200, true, 100},
		{"no rollback: the epoch is ahead", 1, 300, false, 100},
	}
	for _, tc := range tests {
		if err := rc.HSet(ctx, JournalMetaKey, "crm_top", tc.crmTop).Err(); err != nil {
			t.Fatal(err)
		}
		e, err := s.EpochCheck(ctx, tc.mine, now, time.Hour)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if e.Found != tc.wantFound || e.Rollback.Floor != tc.wantFloor {
			t.Errorf("%s: found %v, floor %d; want %v, %d", tc.name, e.Found, e.Rollback.Floor, tc.wantFound, tc.wantFloor)
		}
	}
}
