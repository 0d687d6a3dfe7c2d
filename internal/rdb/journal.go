package rdb

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// JournalItem is one CRM lead as the v1 journal keeps it.
type JournalItem struct {
	// CRMID is the CRM's id of the lead.
	CRMID int64
	// At is the lead's creation time as the CRM lists it.
	At time.Time
	// Fingerprint identifies its content (the worker's fingerprint).
	Fingerprint string
}

// Journal is the range of CRM ids the journal holds without a gap: every
// CRM lead with From ≤ id ≤ Max is in it. Zero when empty.
type Journal struct {
	From, Max int64
}

// Covers reports whether every CRM lead with an id above after is in the
// journal (after 0: the journal was empty, every lead counts).
func (j Journal) Covers(after int64) bool { return j.Max > 0 && after >= 0 && j.From <= after+1 }

var journalMergeScript = load("journal_merge")

// JournalKeep is how many CRM leads the journal holds: a v1 CRM that takes
// more leads than this within LEADRELAY_RECONCILE_AFTER leaves the look-up
// to paging (about 100 bytes a lead in Redis).
const JournalKeep = 20000

// JournalPage is one list answer of the CRM's newest leads, as
// JournalMerge takes it.
type JournalPage struct {
	// Items are the page's leads.
	Items []JournalItem
	// Complete says the answer is the CRM's whole list (shorter than a
	// page).
	Complete bool
	// Seq is JournalSeq as read just before the list call.
	Seq int64
	// Low: only the items with an id of at least Low extend the gapless
	// range (0: all of them); the caller leaves out what the page may
	// list only in part.
	Low int64
	// Now is the fleet's clock at the merge (zero: Redis TIME).
	Now time.Time
	// Newest is the page's newest date (zero: no dates), and NewestN how
	// many of its leads have it: while the CRM may still be filling that
	// second, they count as sends the next page must show. The newest
	// second any merged page showed counts, with the most leads a page
	// showed of it: two refreshes' list calls may be answered in either
	// order.
	Newest  time.Time
	NewestN int
}

// OpenFor is how long after a page first showed a second as the CRM's
// newest that second may still get leads: the CRM's dates have whole
// seconds, and its clock was in that second or later when it answered,
// so a second later it has moved on (a tenth more for the two clocks'
// rates).
const OpenFor = 1100 * time.Millisecond

// JournalMerge adds the items of one list answer to the journal and
// records what the next list answer must hold (Begun.JournalSends).
func (s *Store) JournalMerge(ctx context.Context, p JournalPage) (Journal, error) {
	args := make([]any, 0, 8+2*len(p.Items))
	args = append(args, JournalKeep, p.Complete, p.Seq, p.Low, micros(p.Now), ms(p.Newest), p.NewestN, OpenFor.Microseconds())
	for _, it := range p.Items {
		args = append(args, it.CRMID, strconv.FormatInt(it.CRMID, 10)+"|"+strconv.FormatInt(ms(it.At), 10)+"|"+it.Fingerprint)
	}
	r, err := journalMergeScript.Run(ctx, s.c, []string{JournalItemsKey, JournalMetaKey}, args...).Int64Slice()
	if err != nil || len(r) != 2 {
		return Journal{}, err
	}
	return Journal{From: r[0], Max: r[1]}, nil
}

// JournalRead returns the journal's items with an id above after, and its
// range.
func (s *Store) JournalRead(ctx context.Context, after int64) ([]JournalItem, Journal, error) {
	var items *redis.StringSliceCmd
	var meta *redis.SliceCmd
	cmds, _ := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		items = p.ZRangeByScore(ctx, JournalItemsKey, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(after, 10), Max: "+inf"})
		meta = p.HMGet(ctx, JournalMetaKey, "from", "max")
		return nil
	})
	if err := pipeErr(cmds, s.c); err != nil {
		return nil, Journal{}, err
	}
	var j Journal
	if v := meta.Val(); len(v) == 2 {
		j.From, _ = strconv.ParseInt(str(v[0]), 10, 64)
		j.Max, _ = strconv.ParseInt(str(v[1]), 10, 64)
	}
	out := make([]JournalItem, 0, len(items.Val()))
	for _, m := range items.Val() {
		f := strings.SplitN(m, "|", 3)
		if len(f) != 3 {
			continue
		}
		id, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, JournalItem{CRMID: id, At: fromMS(f[1]), Fingerprint: f[2]})
	}
	return out, j, nil
}

// JournalSeq returns the count of v1 sends so far, to pass to JournalMerge.
func (s *Store) JournalSeq(ctx context.Context) (int64, error) {
	v, err := s.c.HGet(ctx, JournalMetaKey, "seq").Int64()
	return v, nilErr(err)
}

// JournalTop returns the journal's highest CRM id (0 when empty).
func (s *Store) JournalTop(ctx context.Context) (int64, error) {
	v, err := s.c.HGet(ctx, JournalMetaKey, "max").Int64()
	return v, nilErr(err)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
