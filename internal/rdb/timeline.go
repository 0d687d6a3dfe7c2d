package rdb

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/delivery"
)

// TimelineCap is how many runs a lead's timeline keeps, the newest. It
// holds the default retry budget's runs (lead.DefaultMaxRetry and the
// spare run) with room for postponements, which fold into one entry per
// stretch of the same reason: at most ~15 KB a lead.
const TimelineCap = 100

// runEntry is a timeline entry as record_run.lua reads and writes it:
// short names, times in ms since the epoch (exact in Lua's doubles).
type runEntry struct {
	At      int64           `json:"at"`
	Last    int64           `json:"last,omitempty"`
	Worker  string          `json:"w,omitempty"`
	End     string          `json:"e"`
	Reason  json.RawMessage `json:"r,omitempty"`
	CRMID   int64           `json:"crm,omitempty"`
	MS      int64           `json:"ms"`
	Adds    int             `json:"adds,omitempty"`
	LookUps int             `json:"lu,omitempty"`
	Fenced  int             `json:"f,omitempty"`
	Repeats int             `json:"n,omitempty"`
	Fold    string          `json:"k,omitempty"`
}

var recordRunScript = load("record_run")

// RecordRun appends run r of token to lead id's timeline, which then
// lives ttl (the lead's other records' TTL) from this write. A
// postponement for the same reason as the entry before it updates that
// entry (Run.Repeats). The entry is written even when the run no longer
// holds the lead (it answers Fenced then, and the entry says so): what a
// run did at the CRM stays on record whoever holds the lead now.
func (s *Store) RecordRun(ctx context.Context, id, token string, r delivery.Run, ttl time.Duration) (Fence, error) {
	b, fold, err := runEntryOf(r)
	if err != nil {
		return Owned, err
	}
	n, err := s.eval(ctx, recordRunScript, []string{TimelineKey(id), LockKey(id), AttemptKey(id)},
		token, b, fold, TimelineCap, ttl.Milliseconds()).Int64()
	return fenceOf(n), err
}

// runEntryOf is run r as record_run.lua keeps it, and its fold key: a
// postponement folds into an entry before it of the same reason.
func runEntryOf(r delivery.Run) (entry []byte, fold string, err error) {
	e := runEntry{At: r.At.UnixMilli(), Worker: r.Worker, End: string(r.End), CRMID: r.CRMID,
		MS: r.Duration.Milliseconds(), Adds: r.Adds, LookUps: r.LookUps}
	if !r.Reason.IsZero() {
		// The CRM's own text (Detail) may repeat the fields it refused:
		// the timeline keeps codes only, for as long as the lead's records.
		reason := r.Reason
		reason.Detail = ""
		e.Reason = json.RawMessage(reason.Encode())
	}
	if entry, err = json.Marshal(e); err != nil {
		return nil, "", err
	}
	if r.End == delivery.RunPostponed {
		fold = string(r.End) + ":" + string(r.Reason.Code)
	}
	return entry, fold, nil
}

// Runs reads lead id's timeline, oldest run first; none when it has no
// timeline (never run, expired, or run by a worker of the previous
// version). A delivering run the marker implies (impliedRun: Finish wrote
// no entry for it) is read from the marker, without its worker and
// duration, at the time of the delivery.
func (s *Store) Runs(ctx context.Context, id string) ([]delivery.Run, error) {
	var (
		list   *redis.StringSliceCmd
		marker *redis.StringCmd
	)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		list = p.LRange(ctx, TimelineKey(id), 0, -1)
		marker = p.Get(ctx, DeliveredKey(id))
		return nil
	})
	if err = nilErr(err); err != nil {
		return nil, err
	}
	raw := list.Val()
	runs := make([]delivery.Run, 0, len(raw)+1)
	delivered := false
	for _, v := range raw {
		var e runEntry
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return nil, fmt.Errorf("rdb: timeline of %s: %w", id, err)
		}
		r := delivery.Run{At: time.UnixMilli(e.At).UTC(), Worker: e.Worker, End: delivery.RunEnd(e.End),
			CRMID: e.CRMID, Duration: time.Duration(e.MS) * time.Millisecond, Adds: e.Adds, LookUps: e.LookUps,
			Fenced: e.Fenced == 1, Repeats: e.Repeats}
		if e.Last != 0 {
			r.LastAt = time.UnixMilli(e.Last).UTC()
		}
		if len(e.Reason) > 0 {
			r.Reason = delivery.ParseReason(string(e.Reason))
		}
		delivered = delivered || r.End == delivery.RunDelivered
		runs = append(runs, r)
	}
	if m, err := parseMarkerOf(id, marker.Val()); !delivered && err == nil && m.implies() {
		return withRun(runs, delivery.Run{At: m.At.UTC(), End: delivery.RunDelivered, CRMID: m.CRMID, Adds: 1}), nil
	}
	return runs, nil
}

// impliedRun reports whether run r, which wrote marker m, is the one a
// marker implies (Runs): a plain add, delivered by the run that sent it,
// with no look-up. Finish then writes its entry only when the lead has a
// timeline already (a run before it), or the run no longer held the lead.
func impliedRun(r *delivery.Run, m Marker) bool {
	return r != nil && r.End == delivery.RunDelivered && r.Adds == 1 && r.LookUps == 0 &&
		r.Reason.IsZero() && !r.Fenced && r.Repeats == 0 && r.CRMID == m.CRMID && m.CRMID > 0 && m.Via == ""
}

// withRun puts r among runs in the order of their starts.
func withRun(runs []delivery.Run, r delivery.Run) []delivery.Run {
	i := len(runs)
	for i > 0 && runs[i-1].At.After(r.At) {
		i--
	}
	return append(runs[:i], append([]delivery.Run{r}, runs[i:]...)...)
}
