package rdb

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

var taskPayloadScript = load("task_payload")

// asynqPayloadField is the field number of the payload in asynq's task
// message (asynq's internal/proto TaskMessage: bytes payload = 2).
const asynqPayloadField = 2

// PayloadChange is what ChangeTaskPayload did.
type PayloadChange int

// The outcomes of ChangeTaskPayload.
const (
	// PayloadKept: f left the payload as it was.
	PayloadKept PayloadChange = iota
	// PayloadChanged: the task now carries f's payload.
	PayloadChanged
	// PayloadActive: a worker holds the task; nothing was changed (a
	// later call finds it settled).
	PayloadActive
	// PayloadGone: the task is gone, or kept changing under the call.
	PayloadGone
)

// ChangeTaskPayload rewrites the payload of task id of queue with f,
// keeping the rest of asynq's message byte for byte. asynq has no public
// call that changes a stored task (`ctl rekey` re-seals payloads, erasure
// empties them), so this reads and writes asynq's task hash, compare and
// set: a task that changed between the read and the write is read again.
func (s *Store) ChangeTaskPayload(ctx context.Context, queue, id string, f func([]byte) ([]byte, bool, error)) (PayloadChange, error) {
	key := AsynqTaskKey(queue, id)
	for range 5 {
		vals, err := s.c.HMGet(ctx, key, "msg", "state").Result()
		if err != nil {
			return PayloadGone, err
		}
		msg, _ := vals[0].(string)
		if msg == "" {
			return PayloadGone, nil
		}
		if st, _ := vals[1].(string); st == "active" {
			return PayloadActive, nil
		}
		payload, err := taskPayload([]byte(msg))
		if err != nil {
			return PayloadGone, fmt.Errorf("task %s: %w", id, err)
		}
		out, changed, err := f(payload)
		if err != nil || !changed {
			return PayloadKept, err
		}
		next, err := withTaskPayload([]byte(msg), out)
		if err != nil {
			return PayloadGone, fmt.Errorf("task %s: %w", id, err)
		}
		switch n, err := taskPayloadScript.Run(ctx, s.c, []string{key}, msg, next).Int(); {
		case err != nil:
			return PayloadGone, err
		case n == 1:
			return PayloadChanged, nil
		case n == -1:
			return PayloadActive, nil
		}
	}
	return PayloadGone, nil
}

// taskPayload is the payload field of an encoded asynq task message.
func taskPayload(msg []byte) ([]byte, error) {
	var payload []byte
	err := eachField(msg, func(num protowire.Number, _ protowire.Type, field, value []byte) {
		if num == asynqPayloadField {
			payload = value
		}
	})
	return payload, err
}

// withTaskPayload is msg with its payload field replaced by payload, in
// its place, every other field as it was.
func withTaskPayload(msg, payload []byte) ([]byte, error) {
	out := make([]byte, 0, len(msg)+len(payload))
	put := func() []byte {
		out = protowire.AppendTag(out, asynqPayloadField, protowire.BytesType)
		return protowire.AppendBytes(out, payload)
	}
	done := false
	err := eachField(msg, func(num protowire.Number, _ protowire.Type, field, _ []byte) {
		switch {
		case num != asynqPayloadField:
			out = append(out, field...)
		case !done:
			out, done = put(), true
		}
	})
	if err != nil {
		return nil, err
	}
	if !done {
		out = put()
	}
	return out, nil
}

// eachField calls f with every field of a protobuf message: its number,
// type, whole encoding, and value (for a length-delimited field).
func eachField(msg []byte, f func(num protowire.Number, typ protowire.Type, field, value []byte)) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return errors.New("asynq task message: bad tag")
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return errors.New("asynq task message: bad field")
		}
		var value []byte
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(msg[n : n+m])
		}
		f(num, typ, msg[:n+m], value)
		msg = msg[n+m:]
	}
	return nil
}
