package rdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store reads and changes delivery state in Redis. It is safe for
// concurrent use; build it with New.
type Store struct {
	c       redis.UniversalClient
	cluster bool // no legacy keys on a Cluster
}

// New returns a Store on c, which stays the caller's. A *redis.ClusterClient
// makes the store skip the previous version's unslotted keys.
func New(c redis.UniversalClient) *Store {
	_, cluster := c.(*redis.ClusterClient)
	return &Store{c: c, cluster: cluster}
}

// Client returns the Redis client the store works on.
func (s *Store) Client() redis.UniversalClient { return s.c }

// Marker is the delivered marker: proof that the CRM holds the lead,
// checked before every add.
type Marker struct {
	// CRMID is the CRM's id of the lead.
	CRMID int64 `json:"crm_id"`
	// At is when the delivery was recorded.
	At time.Time `json:"at"`
	// LeadID is the relay's lead id.
	LeadID string `json:"lead_id"`
	// Site is the site that sent the lead.
	Site string `json:"site,omitempty"`
	// Sum is the digest of the delivered content (lead.Lead.Hash); a task
	// whose content differs is a different lead, never a duplicate. Empty
	// in markers of the previous version.
	Sum string `json:"sum,omitempty"`
	// Via is "reconcile" when a look-up found the lead at the CRM, empty
	// for a plain add.
	Via string `json:"via,omitempty"`

	raw string // as stored, for DropMarker
}

// Matches reports whether the marker records content sum; a marker that
// records no digest (previous version) matches anything.
func (m *Marker) Matches(sum string) bool { return m.Sum == "" || sum == "" || m.Sum == sum }

// ParseMarker decodes a marker as stored.
func ParseMarker(s string) (*Marker, error) {
	var m Marker
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("rdb: decode delivered marker: %w", err)
	}
	m.raw = s
	return &m, nil
}

// ms and fromMS convert times for scripts: Unix milliseconds, 0 = zero.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// nilErr drops redis.Nil, which scripts answer for "nothing".
func nilErr(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// asStrings reads a script's flat array answer.
func asStrings(v any) ([]string, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("rdb: unexpected script answer %T", v)
	}
	out := make([]string, len(a))
	for i, x := range a {
		switch x := x.(type) {
		case string:
			out[i] = x
		case int64:
			out[i] = strconv.FormatInt(x, 10)
		case nil:
		default:
			return nil, fmt.Errorf("rdb: unexpected script answer element %T", x)
		}
	}
	return out, nil
}
