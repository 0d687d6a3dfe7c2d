package lead

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/hibiken/asynq"
)

// TaskType is the asynq task type of a lead delivery.
const TaskType = "lead:deliver"

// Defaults of a lead task, used unless configured otherwise
// (LEADRELAY_QUEUE, LEADRELAY_MAX_RETRY, LEADRELAY_DEDUP_TTL,
// LEADRELAY_KEYLESS_WINDOW).
const (
	// DefaultQueue is the asynq queue leads travel on.
	DefaultQueue = "leads"
	// DefaultMaxRetry is the failed attempts a lead may spend before it is
	// dead: about three days with the worker's default retry delays.
	DefaultMaxRetry = 80
	// DefaultDedupTTL is how long a finished task is kept, and so how
	// long a repeat submission is recognised as a duplicate.
	DefaultDedupTTL = 24 * time.Hour
	// DefaultKeylessWindow is how long a keyless lead's identity lasts
	// (LEADRELAY_KEYLESS_WINDOW): the same content again within it is a
	// double submit, after it a new lead.
	DefaultKeylessWindow = 10 * time.Minute
)

// Payload is what a lead task carries: the lead and the relay's metadata. It
// never holds CRM credentials.
type Payload struct {
	// ID is the relay's lead id, derived from Site and IdempotencyKey, and the
	// asynq task id: the same submission twice is one task.
	ID string `json:"id"`
	// Site is the name of the site that sent the lead.
	Site string `json:"site"`
	// IdempotencyKey is the site's key, or a hash of the lead when it sent none.
	IdempotencyKey string `json:"idempotency_key"`
	// ReceivedAt is when intake accepted the lead.
	ReceivedAt time.Time `json:"received_at"`
	// Lead is the submission itself.
	Lead Lead `json:"lead"`
	// Sum is the Digest of Lead, its version in its text: a task whose
	// content differs from what was delivered under the same id is a
	// different lead. Empty in payloads of the previous version.
	Sum string `json:"sum,omitempty"`
	// Trace is the W3C traceparent of the publish that enqueued the lead,
	// so every run of the worker joins the site's request's trace (package
	// tracing). Empty when tracing is off, and in tasks of earlier
	// versions. An identifier only: no personal data.
	Trace string `json:"traceparent,omitempty"`
}

// ID derives the relay's lead id from a site and an idempotency key. It is
// stable, so a repeat submission maps to the same id.
func ID(site, idempotencyKey string) string {
	sum := sha256.Sum256([]byte(site + "\x00" + idempotencyKey))
	return "ld_" + hex.EncodeToString(sum[:12])
}

// NewPayload builds the payload of a lead. An empty idempotencyKey is replaced
// by the key of the lead's content digest (Digest.Key).
func NewPayload(site, idempotencyKey string, l Lead, receivedAt time.Time) Payload {
	sum := l.Digest()
	if idempotencyKey == "" {
		idempotencyKey = sum.Key()
	}
	return Payload{
		Sum:            string(sum),
		ID:             ID(site, idempotencyKey),
		Site:           site,
		IdempotencyKey: idempotencyKey,
		ReceivedAt:     receivedAt.UTC(),
		Lead:           l,
	}
}

// SpareRuns is the run a lead task carries beyond its retry budget, kept
// for postponements (TaskOptions): asynq's MaxRetry of a lead task is its
// budget plus SpareRuns.
const SpareRuns = 1

// TaskOptions are the asynq options every lead task is enqueued with, by
// the producer and by a requeue alike: its queue, one run more than its
// retry budget (the worker spends counted failures up to budget and keeps
// the last run for backpressure, so asynq never archives a lead behind
// its back), and how long asynq keeps it once delivered.
func TaskOptions(queue string, budget int, retention time.Duration) []asynq.Option {
	opts := []asynq.Option{asynq.Queue(queue), asynq.MaxRetry(budget + SpareRuns)}
	if retention > 0 {
		opts = append(opts, asynq.Retention(retention))
	}
	return opts
}
