package crm

import "sync/atomic"

// Top is the highest CRM id a process knows of, the watermark its sends
// record. Safe for concurrent use; the zero value is 0.
type Top struct{ v atomic.Int64 }

// Load returns the top.
func (t *Top) Load() int64 { return t.v.Load() }

// Raise raises the top to n; a lower n changes nothing.
func (t *Top) Raise(n int64) {
	for {
		old := t.v.Load()
		if n <= old || t.v.CompareAndSwap(old, n) {
			return
		}
	}
}
