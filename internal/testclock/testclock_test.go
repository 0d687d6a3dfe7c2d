package testclock

import (
	"sync"
	"testing"
	"time"
)

// TestClock: the clock reads what it was last set or advanced to, and
// nothing else moves it.
func TestClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		move func(c *Clock)
		want time.Time
	}{
		{"still", func(*Clock) {}, start},
		{"advance", func(c *Clock) { c.Advance(time.Minute) }, start.Add(time.Minute)},
		{"advance twice", func(c *Clock) { c.Advance(time.Second); c.Advance(time.Hour) }, start.Add(time.Hour + time.Second)},
		{"back", func(c *Clock) { c.Advance(-time.Hour) }, start.Add(-time.Hour)},
		{"set", func(c *Clock) { c.Set(start.AddDate(1, 0, 0)) }, start.AddDate(1, 0, 0)},
		{"set then advance", func(c *Clock) { c.Set(time.Time{}); c.Advance(time.Second) }, time.Time{}.Add(time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := New(start)
			tc.move(c)
			if got := c.Now(); !got.Equal(tc.want) {
				t.Errorf("Now() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestClockConcurrent: advances from many goroutines all count (run with
// -race to see the clock is safe for concurrent use).
func TestClockConcurrent(t *testing.T) {
	t.Parallel()
	var c Clock
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), (time.Time{}).Add(800*time.Millisecond); !got.Equal(want) {
		t.Errorf("Now() = %v, want %v", got, want)
	}
}
