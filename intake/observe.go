package intake

import (
	"context"
	"net/http"
	"time"

	"leadrelay/lead"
	"leadrelay/producer"
)

// Observer is told what intake does, for metrics. Its methods must be cheap
// and safe for concurrent use; Options.Observer nil observes nothing. The
// metrics package implements it.
type Observer interface {
	// IntakeRequest reports one answered request: the site, when the
	// request authenticated as one ("" otherwise; never a key), and the
	// outcome noted for the log line ("" when none was).
	IntakeRequest(site, outcome string)
	// Enqueued reports how long one Publish took, failed or not.
	Enqueued(d time.Duration)
	// Undecodable reports a drop-in request of site whose bytes were not
	// all text in the charset it declared (or the site's): its lead was
	// kept, read as well as could be, and the site's form needs fixing.
	Undecodable(site string)
}

// observeRequests reports every request's site and outcome once the inner
// handlers have noted them. It runs inside logRequests, which holds the note.
func observeRequests(obs Observer) middleware {
	return func(next http.Handler) http.Handler {
		if obs == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if rl, _ := r.Context().Value(reqLogKey{}).(*reqLog); rl != nil {
				obs.IntakeRequest(rl.site, rl.outcome)
			}
		})
	}
}

// timedPublisher times Publish for the Observer.
type timedPublisher struct {
	Publisher
	obs Observer
}

func (p timedPublisher) Publish(ctx context.Context, site string, l lead.Lead, idempotencyKey string) (producer.Receipt, error) {
	start := time.Now()
	rc, err := p.Publisher.Publish(ctx, site, l, idempotencyKey)
	p.obs.Enqueued(time.Since(start))
	return rc, err
}

// observed returns pub timed for obs, or pub itself when obs is nil.
func observed(pub Publisher, obs Observer) Publisher {
	if obs == nil {
		return pub
	}
	return timedPublisher{Publisher: pub, obs: obs}
}
