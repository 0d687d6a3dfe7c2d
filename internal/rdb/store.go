package rdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store reads and changes delivery state in Redis. It is safe for
// concurrent use; build it with New.
type Store struct {
	c       redis.UniversalClient
	cluster bool   // no legacy keys on a Cluster
	g       *group // the round trips concurrent calls share (eval)
}

// New returns a Store on c, which stays the caller's. A *redis.ClusterClient
// makes the store skip the previous version's unslotted keys.
func New(c redis.UniversalClient) *Store {
	_, cluster := c.(*redis.ClusterClient)
	return &Store{c: c, cluster: cluster, g: &group{c: c}}
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
	// Sum is the digest of the delivered content (the payload's Sum, its
	// version in its text; a compact marker keeps its first markerSumLen
	// characters); a task whose content differs is a different lead, never
	// a duplicate (lead.SameContent compares across versions). Empty in
	// markers of the previous version.
	Sum string `json:"sum,omitempty"`
	// Via is "reconcile" when a look-up found the lead at the CRM, empty
	// for a plain add.
	Via string `json:"via,omitempty"`

	raw string // as stored, for DropMarker
}

// markerSumLen is how much of the content digest a compact marker keeps:
// 64 bits tell a reused key's other content from a repeat.
const markerSumLen = 16

// markerVersion starts a compact marker: "2|crm id|at ms|sum|via|site".
// Markers written before are JSON (and the previous version's marker,
// LegacyDeliveredKey, stays JSON, which that version reads).
const markerVersion = "2"

// encode is the compact form of the marker: about a third of the JSON,
// kept for every delivered lead for LEADRELAY_DELIVERED_TTL. The lead id
// is the key's.
func (m Marker) encode() string {
	sum := m.Sum
	if len(sum) > markerSumLen {
		sum = sum[:markerSumLen]
	}
	via := ""
	if m.Via != "" {
		via = m.Via[:1]
	}
	return markerVersion + "|" + strconv.FormatInt(m.CRMID, 10) + "|" + strconv.FormatInt(ms(m.At), 10) + "|" +
		sum + "|" + via + "|" + m.Site
}

// vias are the Via values by their first letter, for compact markers.
var vias = map[string]string{"r": "reconcile"}

// ParseMarker decodes a marker as stored, compact or JSON. A compact
// marker does not name its lead: the caller that read it sets LeadID.
func ParseMarker(s string) (*Marker, error) {
	var m Marker
	if rest, ok := strings.CutPrefix(s, markerVersion+"|"); ok {
		f := strings.SplitN(rest, "|", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("rdb: decode delivered marker: %d fields", len(f)+1)
		}
		id, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("rdb: decode delivered marker: crm id: %w", err)
		}
		m = Marker{CRMID: id, At: fromMS(f[1]).UTC(), Sum: f[2], Via: vias[f[3]], Site: f[4]}
	} else if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("rdb: decode delivered marker: %w", err)
	}
	m.raw = s
	return &m, nil
}

// implies reports whether the marker stands for its delivering run's
// timeline entry when the timeline has none (Runs, impliedRun): a compact
// marker of a plain add.
func (m *Marker) implies() bool {
	return strings.HasPrefix(m.raw, markerVersion+"|") && m.Via == "" && m.CRMID > 0
}

// parseMarkerOf is ParseMarker for a marker read under lead id's key.
func parseMarkerOf(id, s string) (*Marker, error) {
	m, err := ParseMarker(s)
	if err == nil && m.LeadID == "" {
		m.LeadID = id
	}
	return m, err
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

// Time is Redis's clock (TIME), the one clock of the fleet: times that
// workers compare are read against it (worker's fleet clock).
func (s *Store) Time(ctx context.Context) (time.Time, error) {
	return s.c.Time(ctx).Result()
}
