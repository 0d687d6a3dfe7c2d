package producer

import (
	"errors"
	"fmt"
)

// ErrKeyReused is wrapped by the error Publish returns when a site reuses
// an idempotency key with a different lead: the key already names another
// submission, so nothing is enqueued (HTTP 422 at intake).
var ErrKeyReused = errors.New("producer: idempotency key reused with a different lead")

// BacklogFullError is the error Publish returns when a lead does not fit
// the backlog caps (Options.SiteMax, Options.TotalMax). Nothing was
// stored; the site should send the lead again once the backlog drains.
type BacklogFullError struct {
	// Site is the site, and Global false, when the site's own cap is
	// reached; Global is true when the cap of all sites is.
	Site   string
	Global bool
	// Pending is the backlog counted, and Cap the cap it reached.
	Pending, Cap int64
}

func (e *BacklogFullError) Error() string {
	if e.Global {
		return fmt.Sprintf("producer: the backlog of all sites is full (%d undelivered leads, cap %d)", e.Pending, e.Cap)
	}
	return fmt.Sprintf("producer: site %s has %d undelivered leads, its cap is %d", e.Site, e.Pending, e.Cap)
}
