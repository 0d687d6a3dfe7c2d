package rdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The dead-letter store's keys and scripts (DeadRecordKey, DeadIndexKey,
// ...). What a record holds and how deaths merge is package deadletter's;
// this is how they are kept.
var (
	deadPutScript    = load("dead_put")
	deadDeleteScript = load("dead_delete")
	deadUndoScript   = load("dead_undo")
)

// DeadRow is one write of a dead lead's record.
type DeadRow struct {
	// ID, Site and Queue are the lead's; Record its encoded record.
	ID, Site, Queue string
	Record          []byte
	// DeadAt orders the indexes.
	DeadAt time.Time
	// Read is the record the writer read and merged (nil: none), and
	// ReadSite and ReadQueue its site and queue: the write happens only
	// if the record is still Read.
	Read                []byte
	ReadSite, ReadQueue string
	// History is the requeue history a lead without a record took up (nil:
	// none). With Read nil the write happens only if the history is still
	// History, and it goes with the write.
	History []byte
}

// DeadPut writes a dead lead's record and its index entries in one
// script, unless the record (or the history it took up) changed since it
// was read: then it answers false and writes nothing.
func (s *Store) DeadPut(ctx context.Context, p DeadRow) (bool, error) {
	readSite, readQueue := p.Site, p.Queue
	if p.Read != nil {
		readSite, readQueue = p.ReadSite, p.ReadQueue
	}
	n, err := deadPutScript.Run(ctx, s.c, []string{DeadRecordKey(p.ID), DeadHistoryKey(p.ID), DeadIndexKey,
		DeadSiteKey(p.Site), DeadQueueKey(p.Queue), DeadSiteKey(readSite), DeadQueueKey(readQueue)},
		p.ID, p.Site, p.Queue, p.Record, p.DeadAt.UnixMilli(), p.Read, p.History, boolArg(p.Read == nil)).Int()
	return n == 1, err
}

// DeadRecord returns a dead lead's encoded record, nil when it has none.
func (s *Store) DeadRecord(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.HGet(ctx, DeadRecordKey(id), "rec").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// DeadRecords returns the encoded records of ids, in order, nil for an id
// that has none: one round trip per 500.
func (s *Store) DeadRecords(ctx context.Context, ids []string) ([][]byte, error) {
	out := make([][]byte, 0, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		cmds := make([]*redis.StringCmd, len(chunk))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range chunk {
				cmds[i] = p.HGet(ctx, DeadRecordKey(id), "rec")
			}
			return nil
		})
		if err = nilErr(err); err != nil {
			return nil, err
		}
		for _, c := range cmds {
			b, err := c.Bytes()
			if err != nil {
				b = nil
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// DeadRange selects dead leads by site and death time.
type DeadRange struct {
	// Site keeps that site's leads ("": every site).
	Site string
	// Since and Before bound the death time (zero: unbounded); Before is
	// excluded.
	Since, Before time.Time
	// Offset skips that many of the newest; Limit caps the answer (0: no
	// cap).
	Offset, Limit int
}

// DeadIDs returns the ids r selects, newest first, and how many match
// before Offset and Limit.
func (s *Store) DeadIDs(ctx context.Context, r DeadRange) ([]string, int, error) {
	key := DeadIndexKey
	if r.Site != "" {
		key = DeadSiteKey(r.Site)
	}
	z := &redis.ZRangeBy{Min: "-inf", Max: "+inf"}
	if !r.Since.IsZero() {
		z.Min = strconv.FormatInt(r.Since.UnixMilli(), 10)
	}
	if !r.Before.IsZero() {
		z.Max = "(" + strconv.FormatInt(r.Before.UnixMilli(), 10)
	}
	if r.Limit > 0 || r.Offset > 0 {
		z.Offset, z.Count = int64(max(r.Offset, 0)), int64(r.Limit)
		if r.Limit <= 0 {
			z.Count = -1
		}
	}
	var ids *redis.StringSliceCmd
	var total *redis.IntCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		ids = p.ZRevRangeByScore(ctx, key, z)
		total = p.ZCount(ctx, key, z.Min, z.Max)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return ids.Val(), int(total.Val()), nil
}

// DeadDelete removes the records of ids and their index entries, and
// answers how many there were: one script per 500.
func (s *Store) DeadDelete(ctx context.Context, ids ...string) (int, error) {
	n := 0
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, 0, len(chunk)+3)
		args = append(args, deadRecordPrefix, deadSitePrefix, deadQueuePrefix)
		for _, id := range chunk {
			args = append(args, id)
		}
		k, err := deadDeleteScript.Run(ctx, s.c, []string{DeadIndexKey}, args...).Int()
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// DeadUndo deletes lead id's record and its index entries if the record
// is still rec, as its writer wrote it; it reports whether it did.
func (s *Store) DeadUndo(ctx context.Context, id string, rec []byte) (bool, error) {
	n, err := deadUndoScript.Run(ctx, s.c, []string{DeadRecordKey(id), DeadIndexKey},
		id, rec, deadSitePrefix, deadQueuePrefix).Int()
	return n == 1, err
}

// DeadCount counts the dead leads of queue ("": of every queue).
func (s *Store) DeadCount(ctx context.Context, queue string) (int, error) {
	key := DeadIndexKey
	if queue != "" {
		key = DeadQueueKey(queue)
	}
	n, err := s.c.ZCard(ctx, key).Result()
	return int(n), err
}

// DeadKeepHistory keeps a requeued lead's history (encoded) for ttl.
func (s *Store) DeadKeepHistory(ctx context.Context, id string, history []byte, ttl time.Duration) error {
	return s.c.Set(ctx, DeadHistoryKey(id), history, ttl).Err()
}

// DeadHistory returns a requeued lead's history, nil when it has none.
func (s *Store) DeadHistory(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.Get(ctx, DeadHistoryKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// DeadDropHistory drops a lead's history (it was delivered).
func (s *Store) DeadDropHistory(ctx context.Context, id string) error {
	return s.c.Del(ctx, DeadHistoryKey(id)).Err()
}

// DeadMigrate renames the dead-letter keys of the previous version
// (leadrelay:dead:*, without a hash tag) to this version's, so an upgraded
// single primary keeps its dead leads. It is idempotent and cheap once
// done; on a Redis Cluster, which the previous version never supported,
// there is nothing to move. It answers how many keys moved.
func (s *Store) DeadMigrate(ctx context.Context) (int, error) {
	if s.cluster {
		return 0, nil
	}
	moved := 0
	iter := s.c.Scan(ctx, 0, legacyDeadPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		old := iter.Val()
		if err := s.c.Rename(ctx, old, deadPrefix+strings.TrimPrefix(old, legacyDeadPrefix)).Err(); err != nil {
			return moved, fmt.Errorf("rdb: migrate %s: %w", old, err)
		}
		moved++
	}
	return moved, iter.Err()
}
