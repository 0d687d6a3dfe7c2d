package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Admission is what Admit found for a lead id.
type Admission int

// The answers of Admit.
const (
	// Admitted: the id is new; its record is written.
	Admitted Admission = iota
	// Known: the id is known with the same content: a repeat submission.
	Known
	// Conflict: the id is known with other content: the idempotency key
	// was reused for a different lead.
	Conflict
)

// admitScript writes a lead's admission record unless one exists, and says
// whether an existing one holds the same content digest.
// KEYS: lead. ARGV: site, sum, at ms, ttl ms.
var admitScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], 'sum')
if old then
  if old == ARGV[2] then return 1 end
  return 2
end
redis.call('HSET', KEYS[1], 'site', ARGV[1], 'sum', ARGV[2], 'at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 0
`)

// Admit records that site submitted lead id with content digest sum, for
// ttl (keep it at least the delivered marker's TTL: the worker extends it
// to that on delivery). It runs before the task is enqueued.
func (s *Store) Admit(ctx context.Context, id, site, sum string, at time.Time, ttl time.Duration) (Admission, error) {
	n, err := admitScript.Run(ctx, s.c, []string{LeadKey(id)}, site, sum, ms(at), ttl.Milliseconds()).Int()
	if err != nil {
		return 0, err
	}
	switch n {
	case 0, 1, 2:
		return Admission(n), nil
	}
	return 0, fmt.Errorf("rdb: admit: unexpected answer %d", n)
}

// AddPending puts an enqueued lead in its site's and the global backlog.
func (s *Store) AddPending(ctx context.Context, site, id string, at time.Time) error {
	z := redis.Z{Score: float64(ms(at)), Member: id}
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddNX(ctx, SitePendingKey(site), z)
		p.ZAddNX(ctx, PendingKey, z)
		return nil
	})
	return err
}

// Backlog counts the undelivered leads of site and of all sites. Entries
// admitted before stale (a lead whose enqueue failed and was never
// retried) are dropped first; pass the zero time to keep all.
func (s *Store) Backlog(ctx context.Context, site string, stale time.Time) (siteN, total int64, err error) {
	var sc, tc *redis.IntCmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if !stale.IsZero() {
			max := fmt.Sprintf("(%d", ms(stale))
			p.ZRemRangeByScore(ctx, SitePendingKey(site), "-inf", max)
			p.ZRemRangeByScore(ctx, PendingKey, "-inf", max)
		}
		sc = p.ZCard(ctx, SitePendingKey(site))
		tc = p.ZCard(ctx, PendingKey)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return sc.Val(), tc.Val(), nil
}

// LeadRecord is a lead's admission record.
type LeadRecord struct {
	// Site is the site that sent the lead.
	Site string
	// Sum is the digest of its content.
	Sum string
	// At is when intake admitted it.
	At time.Time
}

// Lead returns what the store knows of a lead whose task asynq may have
// forgotten: its admission record (zero if none) and its delivered marker
// (nil if none).
func (s *Store) Lead(ctx context.Context, id string) (LeadRecord, *Marker, error) {
	var rec *redis.MapStringStringCmd
	var mk, legacy, owner *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGetAll(ctx, LeadKey(id))
		mk = p.Get(ctx, DeliveredKey(id))
		if !s.cluster {
			legacy = p.Get(ctx, LegacyDeliveredKey(id))
			owner = p.Get(ctx, LegacyOwnerKey(id))
		}
		return nil
	})
	if err = nilErr(err); err != nil {
		return LeadRecord{}, nil, err
	}
	r := rec.Val()
	lr := LeadRecord{Site: r["site"], Sum: r["sum"], At: fromMS(r["at"])}
	if lr.Site == "" && owner != nil {
		lr.Site = owner.Val()
	}
	raw, gerr := mk.Result()
	if errors.Is(gerr, redis.Nil) && legacy != nil {
		raw, gerr = legacy.Result()
	}
	if gerr != nil {
		return lr, nil, nil
	}
	m, err := ParseMarker(raw)
	return lr, m, err
}

// DeliveredOn returns how many leads were delivered on day's UTC date.
func (s *Store) DeliveredOn(ctx context.Context, day time.Time) (int64, error) {
	n, err := s.c.Get(ctx, DeliveredCountKey(day.UTC().Format("2006-01-02"))).Int64()
	return n, nilErr(err)
}

// Sync waits until n replicas hold every write made so far on this Redis
// primary, within timeout. WAIT counts the writes of its own connection,
// so a write goes first on a dedicated one: replication is one ordered
// stream, so replicas that hold it hold every earlier write too. It needs
// a single-primary client (plain or Sentinel failover).
func (s *Store) Sync(ctx context.Context, n int, timeout time.Duration) error {
	cc, ok := s.c.(interface{ Conn() *redis.Conn })
	if !ok {
		return fmt.Errorf("rdb: replica wait needs a single-primary client, got %T", s.c)
	}
	conn := cc.Conn()
	defer conn.Close()
	if err := conn.Incr(ctx, WaitSeqKey).Err(); err != nil {
		return err
	}
	got, err := conn.Wait(ctx, n, timeout).Result()
	if err != nil {
		return err
	}
	if got < int64(n) {
		return fmt.Errorf("rdb: %d of %d replicas within %s", got, n, timeout)
	}
	return nil
}
