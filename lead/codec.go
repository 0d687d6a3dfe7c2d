package lead

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/hibiken/asynq"

	"leadrelay/internal/seal"
)

// SealedVersion is the "v" of a sealed task payload. A payload without
// "v" is the previous version's plaintext one.
const SealedVersion = 2

// Codec turns a Payload into a task payload and back: the one place a
// lead's fields are sealed and opened. With a keyring it seals the lead's
// fields and its idempotency key (AES-256-GCM under the keyring's first
// key, the lead id as associated data) and leaves in clear only what
// routing and status need: id, site, digest, received_at, the key id and
// the traceparent (an identifier, when tracing is on).
// It opens payloads sealed under any key of the keyring, and reads the
// previous version's plaintext payloads always (see ReadEnvelope).
//
// The zero Codec holds no key: it writes plaintext payloads, as the
// previous version did (tests, and LEADRELAY_DATA_UNENCRYPTED), and cannot
// open sealed ones. A Codec is safe for concurrent use.
type Codec struct {
	keys *seal.Keyring
}

// NewCodec returns a Codec that seals under keys (nil: plaintext).
func NewCodec(keys *seal.Keyring) Codec { return Codec{keys: keys} }

// DeriveKey is a key for label derived from the Codec's data keys
// (seal.Keyring.Derive: from the oldest), nil when it has none.
func (c Codec) DeriveKey(label string) []byte { return c.keys.Derive(label) }

// Sealing reports whether the Codec seals what it encodes.
func (c Codec) Sealing() bool { return c.keys != nil }

// Key is the id of the key the Codec seals under, "" when it does not.
func (c Codec) Key() string { return c.keys.Primary() }

// Keys are the ids of every key the Codec opens, its sealing key first.
func (c Codec) Keys() []string { return c.keys.IDs() }

// NewTask encodes p as an asynq task whose id is the lead id. Callers add
// queue and retry options when they enqueue (TaskOptions).
func (c Codec) NewTask(p Payload) (*asynq.Task, error) {
	b, err := c.Encode(p)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TaskType, b, asynq.TaskID(p.ID)), nil
}

// wire is a task payload as stored, of either version: the previous
// version's plaintext (no V: every field of Payload) or a sealed one (V
// 2: the envelope, Key and Sealed, which holds body).
type wire struct {
	V              int       `json:"v,omitempty"`
	ID             string    `json:"id"`
	Site           string    `json:"site"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	ReceivedAt     time.Time `json:"received_at"`
	Lead           *Lead     `json:"lead,omitempty"`
	Sum            string    `json:"sum,omitempty"`
	Key            string    `json:"key,omitempty"`
	Sealed         []byte    `json:"sealed,omitempty"`
	Trace          string    `json:"traceparent,omitempty"`
	Sent           string    `json:"sent,omitempty"`
}

// body is what a sealed payload seals: everything a site sent.
type body struct {
	IdempotencyKey string `json:"idempotency_key"`
	Lead           Lead   `json:"lead"`
}

// Encode returns p as a task payload: sealed when the Codec has a key,
// else plaintext.
func (c Codec) Encode(p Payload) ([]byte, error) {
	if p.ID == "" || p.Site == "" || p.IdempotencyKey == "" {
		return nil, errors.New("lead: payload needs id, site and idempotency key")
	}
	if c.keys == nil {
		b, err := marshal(p)
		if err != nil {
			return nil, fmt.Errorf("lead: encode payload: %w", err)
		}
		return b, nil
	}
	inner, err := marshal(body{IdempotencyKey: p.IdempotencyKey, Lead: p.Lead})
	if err != nil {
		return nil, fmt.Errorf("lead: encode payload: %w", err)
	}
	kid, box, err := c.keys.Seal([]byte(p.ID), inner)
	if err != nil {
		return nil, fmt.Errorf("lead: seal payload %s: %w", p.ID, err)
	}
	b, err := marshal(wire{V: SealedVersion, ID: p.ID, Site: p.Site, Sum: p.Sum, ReceivedAt: p.ReceivedAt, Key: kid, Sealed: box, Trace: p.Trace})
	if err != nil {
		return nil, fmt.Errorf("lead: encode payload: %w", err)
	}
	return b, nil
}

// Decode reads a task payload of either version, opening a sealed one,
// and checks that it is whole. A payload sealed under a key the Codec
// does not hold gives an error wrapping *seal.UnknownKeyError (the
// keyring is incomplete, the lead is fine); one that does not open, an
// error wrapping seal.ErrOpen.
func (c Codec) Decode(b []byte) (Payload, error) {
	w, err := readWire(b)
	if err != nil {
		return Payload{}, err
	}
	if w.bare() {
		return Payload{}, fmt.Errorf("lead %s: %w", w.ID, ErrNoFields)
	}
	p := Payload{ID: w.ID, Site: w.Site, IdempotencyKey: w.IdempotencyKey, ReceivedAt: w.ReceivedAt, Sum: w.Sum, Trace: w.Trace}
	if w.Lead != nil {
		p.Lead = *w.Lead
	}
	if w.V == SealedVersion {
		inner, err := c.keys.Open(w.Key, []byte(w.ID), w.Sealed)
		if err != nil {
			return Payload{}, fmt.Errorf("lead: open payload %s: %w", w.ID, err)
		}
		var in body
		if err := jsonv2.Unmarshal(inner, &in, jsonv1.DefaultOptionsV1()); err != nil {
			return Payload{}, fmt.Errorf("lead: decode sealed payload %s: %w", w.ID, err)
		}
		p.IdempotencyKey, p.Lead = in.IdempotencyKey, in.Lead
	}
	if p.IdempotencyKey == "" {
		return Payload{}, errors.New("lead: payload lacks id, site or idempotency key")
	}
	return p, nil
}

// Peek reads a task payload as Decode does, but a payload sealed under a
// key the Codec lacks, or a delivered lead's bare envelope (Strip), comes
// back as its envelope alone (no fields, no error), so counting and
// routing by site work without every key.
func (c Codec) Peek(b []byte) (Payload, error) {
	p, err := c.Decode(b)
	var unknown *seal.UnknownKeyError
	if err == nil || !errors.As(err, &unknown) && !errors.Is(err, ErrNoFields) {
		return p, err
	}
	env, err := ReadEnvelope(b)
	if err != nil {
		return Payload{}, err
	}
	return Payload{ID: env.ID, Site: env.Site, ReceivedAt: env.ReceivedAt, Sum: env.Sum}, nil
}

// Reseal returns b sealed under the Codec's key: b itself (changed false)
// when it is sealed under that key already, else b opened and sealed
// again, a plaintext payload included. It is `ctl rekey`'s step.
func (c Codec) Reseal(b []byte) ([]byte, bool, error) {
	if c.keys == nil {
		return nil, false, errors.New("lead: reseal needs a data key")
	}
	env, err := ReadEnvelope(b)
	if err != nil {
		return nil, false, err
	}
	if env.Key == c.keys.Primary() || env.Bare {
		return b, false, nil
	}
	p, err := c.Decode(b)
	if err != nil {
		return nil, false, err
	}
	out, err := c.Encode(p)
	return out, err == nil, err
}

// Envelope is what a task payload shows without its key: enough to route,
// count and answer a status, nothing personal beyond the digest.
type Envelope struct {
	// ID, Site, Sum and ReceivedAt are the Payload's.
	ID, Site, Sum string
	ReceivedAt    time.Time
	// Key is the id of the key the payload is sealed under, "" for a
	// plaintext payload (the previous version's, or LEADRELAY_DATA_UNENCRYPTED).
	Key string
	// Bare is true for a payload that holds the envelope alone (Strip).
	Bare bool
	// Sent is, in a bare envelope, the content hash of the lead as the
	// CRM API version sent it (crm.API.SentHash), for the CRM audit.
	Sent string
}

// ReadEnvelope reads the clear part of a task payload of either version.
// Plaintext payloads are read for as long as LeadRelay writes them:
// while workers of the previous version serve the queue (the producer
// seals only once none does) and with LEADRELAY_DATA_UNENCRYPTED;
// `leadrelay ctl rekey` seals every stored one.
func ReadEnvelope(b []byte) (Envelope, error) {
	w, err := readWire(b)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{ID: w.ID, Site: w.Site, Sum: w.Sum, ReceivedAt: w.ReceivedAt, Key: w.Key, Bare: w.bare(), Sent: w.Sent}, nil
}

// ErrNoFields is wrapped by Decode's error for a payload that holds its
// envelope alone (Strip): a delivered lead's, or an erased one's.
var ErrNoFields = errors.New("payload holds no fields of the lead (delivered or erased)")

// bare reports whether w is an envelope alone: neither the previous
// version's fields nor sealed ones.
func (w wire) bare() bool { return w.V == 0 && w.Lead == nil && w.IdempotencyKey == "" }

// Strip returns the envelope of task payload b alone (id, site, digest,
// received_at) and sent, the content hash of the lead as sent to the CRM
// (for the CRM audit; "" for none): what a delivered lead keeps, with no
// field of the lead and no idempotency key, sealed or not. It is b itself
// (changed false) when b is bare already. The envelope is written in the
// previous version's plaintext shape, whose ReadEnvelope reads it as well.
func Strip(b []byte, sent string) ([]byte, bool, error) {
	w, err := readWire(b)
	if err != nil {
		return nil, false, err
	}
	if w.bare() {
		return b, false, nil
	}
	out, err := marshal(wire{ID: w.ID, Site: w.Site, Sum: w.Sum, ReceivedAt: w.ReceivedAt, Sent: sent})
	return out, err == nil, err
}

// readWire decodes a task payload's envelope. It decodes with
// go-json-experiment/json under encoding/json's options, so it reads every
// payload as encoding/json did (names in any case, unknown members
// ignored, invalid UTF-8 replaced, the last of duplicate members), at about
// half the cost per lead (BenchmarkCodec; decoding was a fifth of a
// delivery's handler CPU).
func readWire(b []byte) (wire, error) {
	var w wire
	if err := jsonv2.Unmarshal(b, &w, jsonv1.DefaultOptionsV1()); err != nil {
		return wire{}, fmt.Errorf("lead: decode payload: %w", err)
	}
	switch {
	case w.V != 0 && w.V != SealedVersion:
		return wire{}, fmt.Errorf("lead: payload version %d is not one this version reads", w.V)
	case w.ID == "" || w.Site == "":
		return wire{}, errors.New("lead: payload lacks id, site or idempotency key")
	case w.V == SealedVersion && (w.Key == "" || len(w.Sealed) == 0 || w.Lead != nil || w.IdempotencyKey != ""):
		return wire{}, errors.New("lead: sealed payload lacks its key or sealed fields, or holds fields in clear")
	}
	return w, nil
}

// marshal is json.Marshal without HTML escaping: json.Marshal writes
// each <, > and & as a six-byte \u escape, so a form full of them would
// take six times its size in Redis. Nothing renders a payload as HTML.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil // Encode ends with a newline
}

// NewTask encodes p as a plaintext task, as the zero Codec does: the
// previous version's payload, for tests and LEADRELAY_DATA_UNENCRYPTED.
// The relay encodes through its configured Codec.
func NewTask(p Payload) (*asynq.Task, error) { return Codec{}.NewTask(p) }

// ParsePayload decodes a plaintext payload, as the zero Codec does; a
// sealed one gives an error wrapping *seal.UnknownKeyError. The relay
// decodes through its configured Codec.
func ParsePayload(b []byte) (Payload, error) { return Codec{}.Decode(b) }
