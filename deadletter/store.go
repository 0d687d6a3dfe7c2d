package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// MaxErrors is how many entries of a lead's error history the store keeps;
// older ones are dropped.
const MaxErrors = 20

// ErrNotFound is returned (wrapped) by Get when the store holds no record
// for the lead id.
var ErrNotFound = errors.New("deadletter: lead not found")

// Record is one dead lead. The zero value is not a valid record: Put needs
// at least LeadID.
type Record struct {
	// LeadID is the relay's lead id, which is also the asynq task id.
	LeadID string `json:"lead_id"`
	// Site is the site that sent the lead.
	Site string `json:"site"`
	// Queue is the asynq queue the lead travelled on; empty means
	// lead.DefaultQueue.
	Queue string `json:"queue"`
	// Reason says why the lead died, the latest reason when it died more
	// than once. Stored as "cause"; see MarshalJSON.
	Reason delivery.Reason `json:"cause,omitzero"`
	// Attempts counts the lead's delivery attempts, across re-runs.
	Attempts int `json:"attempts"`
	// DeadAt is when the lead died (the latest time); zero means now.
	DeadAt time.Time `json:"dead_at"`
	// ReceivedAt is when intake accepted the lead; the first non-zero value
	// is kept.
	ReceivedAt time.Time `json:"received_at"`
	// Payload is the asynq task payload (lead.Codec's encoding: the lead's
	// fields sealed, its metadata in clear), never CRM credentials. Requeue
	// rebuilds the task from it.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Errors is the error history, oldest first, at most MaxErrors entries.
	Errors []AttemptError `json:"errors,omitempty"`
}

// AttemptError is one failed delivery attempt in a lead's history.
type AttemptError struct {
	// At is when the attempt failed.
	At time.Time `json:"at"`
	// Attempt is the attempt's number, from 1.
	Attempt int `json:"attempt"`
	// Class is the failure's outcome as the worker saw it, e.g. "dead"
	// (delivery.Outcome's name).
	Class string `json:"class,omitempty"`
	// Reason is why it failed. Stored as "cause"; see MarshalJSON.
	Reason delivery.Reason `json:"cause,omitzero"`
}

// Options tune how Requeue hands leads back to asynq. The zero value uses
// asynq's defaults.
type Options struct {
	// MaxRetry is the retry budget of a task Requeue enqueues afresh
	// (LEADRELAY_MAX_RETRY); zero means defaultBudget (asynq's own default, 25).
	MaxRetry int
	// Retention is how long asynq keeps such a task once delivered
	// (LEADRELAY_DEDUP_TTL); zero keeps none.
	Retention time.Duration
	// Clock gives the time for a Record without DeadAt; nil = time.Now.
	Clock func() time.Time
	// Codec opens a record's payload to enqueue its lead afresh, and seals
	// the new task. The zero Codec reads and writes plaintext only.
	Codec lead.Codec
}

// Store is the dead-letter store. It is safe for concurrent use. Build it
// with New.
type Store struct {
	rdb   redis.UniversalClient
	store *rdb.Store
	o     Options
	insp  *asynq.Inspector
	cli   *asynq.Client
}

// New returns a store on rc. An optional Options (only the first is used)
// sets how Requeue enqueues; without it asynq's defaults apply. The store
// shares rc and never closes it.
func New(rc redis.UniversalClient, opts ...Options) *Store {
	s := &Store{rdb: rc, store: rdb.New(rc)}
	if len(opts) > 0 {
		s.o = opts[0]
	}
	if s.o.Clock == nil {
		s.o.Clock = time.Now
	}
	s.insp = asynq.NewInspectorFromRedisClient(rc)
	s.cli = asynq.NewClientFromRedisClient(rc)
	return s
}

// Put stores a dead lead. It is idempotent per lead id: a lead that dies
// again keeps one record with the latest DeadAt, Reason, Attempts and
// Queue, the first ReceivedAt, and r.Errors appended to its history (entries
// already held are not added twice; the last MaxErrors are kept).
func (s *Store) Put(ctx context.Context, r Record) error {
	_, err := s.put(ctx, r)
	return err
}

// PutWhile stores r as Put does for a lead whose death is known from
// outside the store, then asks still whether that holds: the dead-letter
// sweep's lead must still be in asynq's archive. An erasure or a re-run
// that took the task out between the sweep's read and its write would
// otherwise get a record back (an erased person's sealed lead; a dead
// record of a lead that is queued again). When still says no, or cannot
// tell, the record written is taken back unless it changed since (a
// concurrent Put merged into it), and kept is false; a lead that is still
// archived is found again by the next sweep. The check comes after the
// write, not in the write's script, because on a Redis Cluster the
// records ({dead}) and asynq's archive ({<queue>}) are in different slots;
// an erasure deletes the task before the record, so either the check sees
// the task gone or the erasure deletes the record written.
func (s *Store) PutWhile(ctx context.Context, r Record, still func(context.Context) (bool, error)) (kept bool, err error) {
	written, err := s.put(ctx, r)
	if err != nil {
		return false, err
	}
	ok, cerr := still(ctx)
	if ok && cerr == nil {
		return true, nil
	}
	if _, err := s.store.DeadUndo(ctx, r.LeadID, written); err != nil {
		return false, fmt.Errorf("deadletter: take back %s: %w", r.LeadID, err)
	}
	if cerr != nil {
		return false, fmt.Errorf("deadletter: put %s: %w", r.LeadID, cerr)
	}
	return false, nil
}

// put is Put, and answers the record as written.
func (s *Store) put(ctx context.Context, r Record) ([]byte, error) {
	if r.LeadID == "" {
		return nil, errors.New("deadletter: put: record has no lead id")
	}
	if len(r.Payload) > 0 && !json.Valid(r.Payload) {
		return nil, fmt.Errorf("deadletter: put %s: payload is not JSON", r.LeadID)
	}
	if r.Queue == "" {
		r.Queue = lead.DefaultQueue
	}
	if r.DeadAt.IsZero() {
		r.DeadAt = s.o.Clock()
	}
	r.DeadAt = r.DeadAt.UTC()
	for range 20 {
		old, raw, err := s.getRecord(ctx, r.LeadID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("deadletter: put %s: %w", r.LeadID, err)
		}
		var hist *history
		var histRaw []byte
		if old == nil {
			// A requeued lead dies again: its count starts where it was.
			if hist, histRaw, err = s.getHistory(ctx, r.LeadID); err != nil {
				return nil, fmt.Errorf("deadletter: put %s: %w", r.LeadID, err)
			}
		}
		rec := merge(old, withHistory(hist, r))
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("deadletter: encode record %s: %w", r.LeadID, err)
		}
		row := rdb.DeadRow{ID: rec.LeadID, Site: rec.Site, Queue: rec.Queue, Record: b, DeadAt: rec.DeadAt,
			Read: raw, History: histRaw}
		if old != nil {
			row.ReadSite, row.ReadQueue = old.Site, old.Queue
		}
		written, err := s.store.DeadPut(ctx, row)
		if err != nil {
			return nil, fmt.Errorf("deadletter: put %s: %w", r.LeadID, err)
		}
		if written {
			return b, nil
		}
		// A concurrent Put of the same lead won; merge with it.
	}
	return nil, fmt.Errorf("deadletter: put %s: too much contention", r.LeadID)
}

// merge folds a new death into the stored record (nil when none).
func merge(old *Record, r Record) Record {
	if old == nil {
		r.Errors = bound(dedupe(nil, r.Errors))
		return r
	}
	out := r
	if out.ReceivedAt.IsZero() || (!old.ReceivedAt.IsZero() && old.ReceivedAt.Before(out.ReceivedAt)) {
		out.ReceivedAt = old.ReceivedAt
	}
	if out.DeadAt.Before(old.DeadAt) {
		out.DeadAt = old.DeadAt
	}
	if len(out.Payload) == 0 {
		out.Payload = old.Payload
	}
	if out.Site == "" {
		out.Site = old.Site
	}
	out.Errors = bound(dedupe(old.Errors, r.Errors))
	return out
}

func dedupe(have, add []AttemptError) []AttemptError {
	out := append([]AttemptError(nil), have...)
	for _, e := range add {
		dup := false
		for _, h := range have {
			if h.Attempt == e.Attempt && h.Reason == e.Reason && h.At.Equal(e.At) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

func bound(errs []AttemptError) []AttemptError {
	if len(errs) > MaxErrors {
		errs = append([]AttemptError(nil), errs[len(errs)-MaxErrors:]...)
	}
	return errs
}

// getRecord reads lead id's record, decoded and as stored, or
// ErrNotFound.
func (s *Store) getRecord(ctx context.Context, id string) (*Record, []byte, error) {
	b, err := s.store.DeadRecord(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if b == nil {
		return nil, nil, ErrNotFound
	}
	r, err := decode(id, b)
	return r, b, err
}

func decode(id string, b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("deadletter: decode record %s: %w", id, err)
	}
	return &r, nil
}

// Get returns the record of lead id, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	r, _, err := s.getRecord(ctx, id)
	if err != nil {
		return Record{}, fmt.Errorf("deadletter: get %s: %w", id, err)
	}
	return *r, nil
}

// Filter selects dead leads. The zero value selects all of them.
type Filter struct {
	// Site keeps only that site's leads; empty means every site.
	Site string
	// Since keeps leads that died at or after it; zero means any time.
	Since time.Time
	// Before keeps leads that died before it; zero means any time. The
	// retention of personal data (LEADRELAY_DEAD_RETENTION) uses it.
	Before time.Time
	// Limit is the most records returned; zero means no limit.
	Limit int
	// Offset skips that many of the newest matches first (paging).
	Offset int
}

// IDs returns the ids of the dead leads f selects, newest first, and how
// many match f before Limit and Offset.
func (s *Store) IDs(ctx context.Context, f Filter) ([]string, int, error) {
	ids, total, err := s.store.DeadIDs(ctx, rdb.DeadRange{Site: f.Site, Since: f.Since, Before: f.Before,
		Offset: f.Offset, Limit: f.Limit})
	if err != nil {
		return nil, 0, fmt.Errorf("deadletter: list: %w", err)
	}
	return ids, total, nil
}

// List returns the dead leads f selects, newest first, and how many match f
// before Limit and Offset.
func (s *Store) List(ctx context.Context, f Filter) ([]Record, int, error) {
	ids, total, err := s.IDs(ctx, f)
	if err != nil || len(ids) == 0 {
		return nil, total, err
	}
	recs, err := s.getMany(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	return recs, total, nil
}

// Missing returns the ids, of ids, that have no record, in their order.
// One round trip, whatever len(ids).
func (s *Store) Missing(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	raws, err := s.store.DeadRecords(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("deadletter: missing: %w", err)
	}
	var out []string
	for i, b := range raws {
		if b == nil {
			out = append(out, ids[i])
		}
	}
	return out, nil
}

// getMany reads records, skipping ids deleted meanwhile.
func (s *Store) getMany(ctx context.Context, ids []string) ([]Record, error) {
	raws, err := s.store.DeadRecords(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("deadletter: list: %w", err)
	}
	out := make([]Record, 0, len(ids))
	for i, b := range raws {
		if b == nil {
			continue
		}
		r, err := decode(ids[i], b)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// Delete removes the records of ids and reports how many there were.
// Unknown ids are ignored.
func (s *Store) Delete(ctx context.Context, ids ...string) (int, error) {
	n, err := s.store.DeadDelete(ctx, ids...)
	if err != nil {
		return n, fmt.Errorf("deadletter: delete: %w", err)
	}
	return n, nil
}

// Forget drops the record of a lead that was delivered after all. The
// worker calls it after a delivery; it costs one round trip and is a no-op
// for a lead that never died.
func (s *Store) Forget(ctx context.Context, id string) error {
	if _, err := s.Delete(ctx, id); err != nil {
		return err
	}
	if err := s.store.DeadDropHistory(ctx, id); err != nil {
		return fmt.Errorf("deadletter: forget history of %s: %w", id, err)
	}
	return nil
}

// Count returns how many dead leads the store holds.
func (s *Store) Count(ctx context.Context) (int, error) {
	n, err := s.store.DeadCount(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("deadletter: count: %w", err)
	}
	return n, nil
}

// CountQueue returns how many dead leads of one asynq queue the store holds.
func (s *Store) CountQueue(ctx context.Context, queue string) (int, error) {
	n, err := s.store.DeadCount(ctx, queue)
	if err != nil {
		return 0, fmt.Errorf("deadletter: count: %w", err)
	}
	return n, nil
}

// Migrate renames the dead-letter keys of the previous version
// (leadrelay:dead:*, without a hash tag) to this version's, so an upgraded
// single primary keeps its dead leads. It is idempotent and cheap once
// done; on a Redis Cluster, which the previous version never supported,
// there is nothing to move and it does nothing. It returns how many keys
// moved.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	n, err := s.store.DeadMigrate(ctx)
	if err != nil {
		return n, fmt.Errorf("deadletter: %w", err)
	}
	return n, nil
}

// ChangePayload rewrites the payload of lead id's record with f (`ctl
// rekey` re-seals it), compare and set against a concurrent Put. It
// reports whether the record changed; a lead without a record is
// ErrNotFound.
func (s *Store) ChangePayload(ctx context.Context, id string, f func([]byte) ([]byte, bool, error)) (bool, error) {
	for range 5 {
		old, raw, err := s.getRecord(ctx, id)
		if err != nil {
			return false, fmt.Errorf("deadletter: change %s: %w", id, err)
		}
		payload, changed, err := f(old.Payload)
		if err != nil || !changed {
			return false, err
		}
		rec := *old
		rec.Payload = payload
		b, err := json.Marshal(rec)
		if err != nil {
			return false, fmt.Errorf("deadletter: encode record %s: %w", id, err)
		}
		written, err := s.store.DeadPut(ctx, rdb.DeadRow{ID: id, Site: rec.Site, Queue: rec.Queue, Record: b, DeadAt: rec.DeadAt,
			Read: raw, ReadSite: old.Site, ReadQueue: old.Queue})
		if err != nil || written {
			return written, err
		}
	}
	return false, fmt.Errorf("deadletter: change %s: too much contention", id)
}
