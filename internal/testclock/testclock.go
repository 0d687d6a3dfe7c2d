// Package testclock is the clock a test moves by hand, for the code under
// test that takes its time from a func() time.Time (crmsim's Config.Clock,
// the ops guard's Now, the worker's Options.Clock and limiter clock): the
// test passes Now and steps time with Advance or Set instead of sleeping.
//
//	clock := testclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
//	sim, err := crmsim.New(crmsim.Config{Clock: clock.Now})
//	clock.Advance(time.Minute)
package testclock

import (
	"sync"
	"time"
)

// Clock is a clock that stands still until the test moves it. It is safe
// for concurrent use. Its zero value reads the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New is a clock that reads start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t, forward or back.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
