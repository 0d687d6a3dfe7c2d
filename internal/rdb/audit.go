package rdb

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

var auditNoteScript = load("audit_note")

// AuditTake takes the fleet's turn to audit for ttl: true when no other
// process took it within ttl, so one audit runs per interval however many
// workers there are.
func (s *Store) AuditTake(ctx context.Context, ttl time.Duration) (bool, error) {
	return s.c.SetNX(ctx, AuditTurnKey, "1", ttl).Result()
}

// AuditNote records the finds of an audit (each "kind:id"), so a find is
// counted and told once however many audits see it, and returns when each
// was first seen and whether this note saw it first. Finds are kept keep
// after the last note.
func (s *Store) AuditNote(ctx context.Context, finds []string, now time.Time, keep time.Duration) (first []time.Time, fresh []bool, err error) {
	if len(finds) == 0 {
		return nil, nil, nil
	}
	args := make([]any, 0, 2+len(finds))
	args = append(args, ms(now), keep.Milliseconds())
	for _, f := range finds {
		args = append(args, f)
	}
	r, err := auditNoteScript.Run(ctx, s.c, []string{AuditFindsKey}, args...).Int64Slice()
	if err != nil {
		return nil, nil, err
	}
	if len(r) != len(finds) {
		return nil, nil, errors.New("rdb: audit_note answered a wrong count")
	}
	first, fresh = make([]time.Time, len(r)), make([]bool, len(r))
	for i, v := range r {
		fresh[i] = v < 0
		first[i] = time.UnixMilli(max(v, -v))
	}
	return first, fresh, nil
}

// AuditSave keeps the latest audit's report (JSON) for ctl and the ops
// listener, for keep.
func (s *Store) AuditSave(ctx context.Context, report []byte, keep time.Duration) error {
	return s.c.Set(ctx, AuditLastKey, report, keep).Err()
}

// AuditLast is the latest audit's report as AuditSave kept it; nil when
// none is kept.
func (s *Store) AuditLast(ctx context.Context) ([]byte, error) {
	b, err := s.c.Get(ctx, AuditLastKey).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}
