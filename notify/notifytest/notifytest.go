// Package notifytest is the test kit of package notify: a Notifier that
// keeps what it is told, for tests of the code that notifies.
//
//	rec := &notifytest.Recorder{}
//	d := deadLetters{notify: rec}
//	…
//	if got := rec.Kinds(); …
package notifytest

import (
	"sync"

	"leadrelay/notify"
)

// Recorder is a notify.Notifier that keeps every event, in order. Its zero
// value is ready; it is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []notify.Event
}

// Notify keeps e.
func (r *Recorder) Notify(e notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns the events kept so far.
func (r *Recorder) Events() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Event(nil), r.events...)
}

// Kinds returns the kinds of the events kept so far.
func (r *Recorder) Kinds() []string {
	var out []string
	for _, e := range r.Events() {
		out = append(out, e.Kind)
	}
	return out
}
