package producer

import "errors"

// ErrKeyReused is wrapped by the error Publish returns when a site reuses
// an idempotency key with a different lead: the key already names another
// submission, so nothing is enqueued (HTTP 422 at intake).
var ErrKeyReused = errors.New("producer: idempotency key reused with a different lead")
