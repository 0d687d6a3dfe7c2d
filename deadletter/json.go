package deadletter

import (
	"encoding/json"

	"leadrelay/delivery"
)

// A record keeps its reason as data ("cause": a delivery.Reason), and
// also as the operators' sentence under the name the previous version
// stored its reason by ("reason", "text"): that version reads and merges
// records during a rolling upgrade, and the JSON APIs (GET /ops/dead, ctl
// --json) show it. The sentence is derived, never read back: a record
// without "cause" (the previous version's) reads its sentence as
// delivery.Legacy.

// MarshalJSON writes r with its reason as data and as the operators'
// sentence.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	return json.Marshal(struct {
		plain
		Text string `json:"reason,omitempty"`
	}{plain(r), r.Reason.Text(delivery.Operators)})
}

// UnmarshalJSON reads a record of this version or the previous one.
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record
	var v struct {
		plain
		Text string `json:"reason"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Record(v.plain)
	if r.Reason.IsZero() {
		r.Reason = delivery.ParseReason(v.Text)
	}
	return nil
}

// MarshalJSON writes e with its reason as data and as the operators'
// sentence.
func (e AttemptError) MarshalJSON() ([]byte, error) {
	type plain AttemptError
	return json.Marshal(struct {
		plain
		Text string `json:"text,omitempty"`
	}{plain(e), e.Reason.Text(delivery.Operators)})
}

// UnmarshalJSON reads an entry of this version or the previous one.
func (e *AttemptError) UnmarshalJSON(b []byte) error {
	type plain AttemptError
	var v struct {
		plain
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = AttemptError(v.plain)
	if e.Reason.IsZero() {
		e.Reason = delivery.ParseReason(v.Text)
	}
	return nil
}
