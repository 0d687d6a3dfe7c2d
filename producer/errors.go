package producer

import (
	"errors"
	"fmt"

	"leadrelay/lead"
)

// ErrKeyReused is wrapped by the error Publish returns when a site reuses
// an idempotency key with a different lead: the key already names another
// submission, so nothing is enqueued (HTTP 422 at intake).
var ErrKeyReused = errors.New("producer: idempotency key reused with a different lead")

// ErrReservedKey is wrapped by the error Publish returns for an
// idempotency key in the relay's own namespace (lead.ReservedKey: it
// starts with "keyless:" or "sha256:"), which names leads sent without a
// key: a site's key there could be aimed at another lead's identity.
// Nothing is stored (HTTP 400 at intake).
var ErrReservedKey = errors.New("producer: idempotency key in the relay's namespace of keyless leads")

// BacklogFullError is the error Publish returns when a lead does not fit
// the backlog caps (Options.SiteMax, Options.TotalMax). Nothing was
// stored; the site should send the lead again once the backlog drains.
type BacklogFullError struct {
	// Site is the site, and Global false, when the site's own cap is
	// reached; Global is true when the cap of all sites is.
	Site   string
	Global bool
	// Bytes is true when the site's share of Redis's memory is full
	// (Options.SiteShare): Pending and Cap are bytes then.
	Bytes bool
	// Pending is the backlog counted, and Cap the cap it reached.
	Pending, Cap int64
}

func (e *BacklogFullError) Error() string {
	if e.Bytes {
		return fmt.Sprintf("producer: site %s keeps %d bytes in Redis, its share is %d", e.Site, e.Pending, e.Cap)
	}
	if e.Global {
		return fmt.Sprintf("producer: the backlog of all sites is full (%d undelivered leads, cap %d)", e.Pending, e.Cap)
	}
	return fmt.Sprintf("producer: site %s has %d undelivered leads, its cap is %d", e.Site, e.Pending, e.Cap)
}

// ErrNotStored is matched (errors.Is) by a Publish error after which Redis
// holds nothing that call wrote of the lead: Redis was not reached, or
// refused, before the lead's task was written. Other Publish implementations
// wrap it to say the same. See NothingStored.
var ErrNotStored = errors.New("producer: nothing of the lead was stored")

// notStored marks err as ErrNotStored without changing its text.
type notStored struct{ error }

func (e notStored) Unwrap() error        { return e.error }
func (e notStored) Is(target error) bool { return target == ErrNotStored }

// NothingStored reports whether err, from Publish, means that call stored
// nothing of the lead: the lead was invalid, did not fit the backlog, its
// key names another lead, or the error matches ErrNotStored. After any
// other error the lead may be in Redis (an enqueue whose answer was lost,
// a replica wait that timed out), so whoever answers the sender must not
// treat the request as never received: intake then keeps a signed
// request's signature in its replay set.
func NothingStored(err error) bool {
	var ve *lead.ValidationError
	var full *BacklogFullError
	return err != nil && (errors.Is(err, ErrNotStored) || errors.As(err, &ve) || errors.As(err, &full) || errors.Is(err, ErrKeyReused))
}
