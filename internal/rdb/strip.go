package rdb

import (
	"context"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// ChangeCompleted rewrites, with f, the payloads of those of tasks ids of
// queue q that asynq holds as completed, each compare and set as
// ChangeTaskPayload does, in two pipelined round trips for them all. It
// answers the ids still active (asynq has not marked them completed yet:
// call again) and the first error; a task gone, in another state, or
// changed between the read and the write is left alone.
func (s *Store) ChangeCompleted(ctx context.Context, q string, ids []string, f func([]byte) ([]byte, bool, error)) (active []string, err error) {
	reads := make([]*redis.SliceCmd, len(ids))
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			reads[i] = p.HMGet(ctx, AsynqTaskKey(q, id), "msg", "state")
		}
		return nil
	}); err != nil {
		return nil, err
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
		return active, err
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
	return active, err
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
