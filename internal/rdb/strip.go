package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// ChangeCompleted rewrites, with f, the payloads of those of tasks ids of
// queue q that asynq holds as completed, each compare and set as
// ChangeTaskPayload does, in two pipelined round trips for them all. It
// answers the ids still active (asynq has not marked them completed yet:
// call again), how many payloads it rewrote, and the first error; a task
// gone, in another state, or changed between the read and the write
// (another worker rewrote it first) is left alone and not counted.
func (s *Store) ChangeCompleted(ctx context.Context, q string, ids []string, f func([]byte) ([]byte, bool, error)) (active []string, changed int, err error) {
	reads := make([]*redis.SliceCmd, len(ids))
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			reads[i] = p.HMGet(ctx, AsynqTaskKey(q, id), "msg", "state")
		}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	type change struct{ key, msg, next string }
	var changes []change
	for i, r := range reads {
		msg, _ := r.Val()[0].(string)
		switch st, _ := r.Val()[1].(string); {
		case st == "active":
			active = append(active, ids[i])
			continue
		case st != "completed" || msg == "":
			continue
		}
		next, ok, ferr := s.changed([]byte(msg), f)
		if ferr != nil && err == nil {
			err = ferr
		}
		if ok {
			changes = append(changes, change{AsynqTaskKey(q, ids[i]), msg, string(next)})
		}
	}
	if len(changes) == 0 {
		return active, 0, err
	}
	calls := make([]*evalCall, len(changes))
	cmds, perr := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range changes {
			calls[i] = queue(ctx, p, taskPayloadScript, []string{c.key}, c.msg, c.next)
		}
		return nil
	})
	if perr == nil || isNoScript(perr) {
		perr = pipeErr(cmds, s.c, calls...)
	}
	if err == nil {
		err = perr
	}
	for _, c := range calls {
		if n, _ := c.cmd.Int(); n == 1 {
			changed++
		}
	}
	return active, changed, err
}

// Completed is a task of asynq's completed set.
type Completed struct {
	// ID is the task's id (a lead task's is its lead id).
	ID string
	// Ends is the Unix second its retention ends, asynq's score of it:
	// when it completed plus its retention (LEADRELAY_DEDUP_TTL).
	Ends int64
}

// CompletedPage reads queue q's completed tasks whose retention ends in
// [from, to] (Unix seconds), in that order, skipping the first skip of
// them, n at most: one ZRANGEBYSCORE, nothing read when none are there.
func (s *Store) CompletedPage(ctx context.Context, q string, from, to int64, skip, n int) ([]Completed, error) {
	zs, err := s.c.ZRangeByScoreWithScores(ctx, asynqCompletedKey(q), &redis.ZRangeBy{
		Min: strconv.FormatInt(from, 10), Max: strconv.FormatInt(to, 10), Offset: int64(skip), Count: int64(n),
	}).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Completed, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		out = append(out, Completed{ID: id, Ends: int64(z.Score)})
	}
	return out, nil
}

var stripCursorScript = load("strip_cursor")

// StripCursor is how far the sweep of a queue's completed tasks has read:
// every task whose retention ends before second At, and the first Skip of
// those that end in At (CompletedPage's order).
type StripCursor struct {
	At   int64
	Skip int
}

// StripCursor reads queue q's sweep cursor (StripCursorKey); ok is false
// when no sweep left one that is still live.
func (s *Store) StripCursor(ctx context.Context, q string) (c StripCursor, ok bool, err error) {
	v, err := s.c.Get(ctx, StripCursorKey(q)).Result()
	if errors.Is(err, redis.Nil) {
		return StripCursor{}, false, nil
	}
	if err != nil {
		return StripCursor{}, false, err
	}
	if _, err := fmt.Sscanf(v, "%d %d", &c.At, &c.Skip); err != nil {
		return StripCursor{}, false, nil // unreadable: as none, the next move replaces it
	}
	return c, true, nil
}

// MoveStripCursor moves queue q's sweep cursor to c if that is further,
// or if the cursor stands beyond second limit (now plus the retention: no
// task completing now ends later), and reports whether it moved. Several
// workers may call it at once: the furthest cursor stays.
func (s *Store) MoveStripCursor(ctx context.Context, q string, c StripCursor, limit int64) (bool, error) {
	n, err := stripCursorScript.Run(ctx, s.c, []string{StripCursorKey(q)}, c.At, c.Skip, limit).Int()
	return n == 1, err
}

// changed is msg with its payload changed by f, and whether f changed it.
// asynq's error_msg of an earlier failed run goes too: a completed task
// needs it no more, and its text may quote what the CRM answered.
func (s *Store) changed(msg []byte, f func([]byte) ([]byte, bool, error)) ([]byte, bool, error) {
	payload, err := taskPayload(msg)
	if err != nil {
		return nil, false, err
	}
	out, ok, err := f(payload)
	if err != nil || !ok {
		return nil, false, err
	}
	next, err := withTaskPayload(msg, out)
	if err != nil {
		return nil, false, err
	}
	next, err = withoutField(next, asynqErrorField)
	return next, err == nil, err
}

// asynqErrorField is the number of asynq's TaskMessage.error_msg, the
// last failed run's error text.
const asynqErrorField = 7

// withoutField is msg without its fields numbered num.
func withoutField(msg []byte, num protowire.Number) ([]byte, error) {
	out := make([]byte, 0, len(msg))
	err := eachField(msg, func(n protowire.Number, _ protowire.Type, field, _ []byte) {
		if n != num {
			out = append(out, field...)
		}
	})
	return out, err
}
