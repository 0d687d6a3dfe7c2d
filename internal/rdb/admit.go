package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Admission is what Admit did with a lead.
type Admission int

// The answers of Admit.
const (
	// Reserved: the lead fits the caps and is counted in its site's
	// backlog; the caller enqueues it now, and gives the place back with
	// Unreserve if the enqueue does not create a task.
	Reserved Admission = iota
	// Delivered: the lead has a delivered marker (Admitted.Marker);
	// nothing was counted.
	Delivered
	// SiteFull: the site has SiteMax undelivered leads; nothing counted.
	SiteFull
	// TotalFull: the queue holds TotalMax undelivered leads; nothing
	// counted.
	TotalFull
	// ShareFull: the site keeps ShareMax bytes in Redis already
	// (Admitted.Kept); nothing counted.
	ShareFull
)

// KeptOverhead is what a lead keeps in Redis besides its task's payload:
// asynq's task hash and its entries in the queue's sets, the delivered
// marker, the run's timeline and the CRM id's claim. A typical lead (a
// 164-byte body) held 2.4 KB in all (README, "A bounded backlog"); this
// bounds the part that does not grow with the lead.
const KeptOverhead = 2048

// keptBuckets is how many time buckets a site's kept bytes are charged
// in over the keep time: each is forgotten whole, so a charge outlives
// its lead by at most one bucket.
const keptBuckets = 24

// AdmitArgs are the inputs of Admit.
type AdmitArgs struct {
	// Queue is the asynq queue the lead goes to; ID and Site the lead's.
	Queue, ID, Site string
	// SiteMax and TotalMax cap the undelivered leads of the site and of
	// the queue (0: no cap).
	SiteMax, TotalMax int64
	// Bytes is what the lead keeps in Redis (its payload and
	// KeptOverhead), charged to the site's share for Keep from Now, the
	// longest a lead's task is kept once delivered. ShareMax is the most
	// bytes the site may keep (0: no share, nothing charged).
	Bytes, ShareMax int64
	// Now is the admission's time; Keep how long a charge lasts.
	Now  time.Time
	Keep time.Duration
}

// bucket is the time bucket of a's charge and its length, in ms.
func (a AdmitArgs) bucket() (now, length int64) {
	length = max(a.Keep.Milliseconds()/keptBuckets, 1000)
	return a.Now.UnixMilli(), length
}

// Admitted is what Admit found.
type Admitted struct {
	// Admission says what happened.
	Admission Admission
	// Marker is the lead's delivered marker, with Delivered.
	Marker *Marker
	// SiteN and Total are the site's and the queue's undelivered leads,
	// this one included when Reserved (zero with Delivered).
	SiteN, Total int64
	// Kept is the bytes the site keeps, with ShareFull.
	Kept int64
}

var (
	reserveScript   = load("reserve")
	unreserveScript = load("unreserve")
)

// Admit decides, in one round trip before a lead is enqueued, whether it
// is delivered already (its marker) and whether it fits the backlog caps,
// and counts it in its site's backlog when it does. The lead's record is
// its task: no key of its own is written for a queued lead. (A marker of
// the previous version is not read here: a repeat of a lead it delivered
// is enqueued, and the worker finds that marker.)
func (s *Store) Admit(ctx context.Context, a AdmitArgs) (Admitted, error) {
	keys := append(append([]string{BacklogKey(a.Queue)}, asynqQueueKeys(a.Queue)...), KeptKey(a.Queue, a.Site))
	now, bucket := a.bucket()
	args := []any{a.Site, a.SiteMax, a.TotalMax, a.Bytes, a.ShareMax, now, bucket, a.Keep.Milliseconds()}
	var v any
	var mk *redis.StringCmd
	if s.cluster {
		var res *evalCall
		cmds, _ := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			mk = p.Get(ctx, DeliveredKey(a.ID))
			res = queue(ctx, p, reserveScript, keys, args...)
			return nil
		})
		if err := pipeErr(cmds, s.c, res); err != nil {
			return Admitted{}, err
		}
		v = res.cmd.Val()
	} else {
		var err error
		if v, err = s.eval(ctx, reserveScript, append(keys, DeliveredKey(a.ID)), args...).Result(); err != nil {
			return Admitted{}, err
		}
	}
	var raw *string
	if mk != nil {
		if m, err := mk.Result(); err == nil {
			raw = &m
		}
	}
	return s.admitted(ctx, a, v, raw)
}

// admitted reads reserve's answer v; raw is the marker read beside the
// script on a Cluster, nil when there is none.
func (s *Store) admitted(ctx context.Context, a AdmitArgs, v any, raw *string) (Admitted, error) {
	r, ok := v.([]any)
	if !ok || len(r) < 3 {
		return Admitted{}, fmt.Errorf("rdb: admit: unexpected answer %v", v)
	}
	code, _ := r[0].(int64)
	var ad Admitted
	ad.Admission = Admission(code)
	ad.SiteN, _ = r[1].(int64)
	ad.Total, _ = r[2].(int64)
	if ad.Admission == ShareFull && len(r) == 4 {
		ad.Kept, _ = r[3].(int64)
	} else if len(r) == 4 {
		if m, ok := r[3].(string); ok {
			raw = &m
		}
	}
	if raw != nil {
		var err error
		if ad.Marker, err = parseMarkerOf(a.ID, *raw); err != nil {
			return Admitted{}, err
		}
		if ad.Admission == Reserved { // a Cluster: the script did not see the marker
			if err := s.Unreserve(ctx, a.Queue, a.Site); err != nil {
				return Admitted{}, err
			}
			if err := s.Refund(ctx, a); err != nil {
				return Admitted{}, err
			}
		}
		ad.Admission, ad.SiteN, ad.Total = Delivered, 0, 0
	}
	switch ad.Admission {
	case Reserved, Delivered, SiteFull, TotalFull, ShareFull:
		return ad, nil
	}
	return Admitted{}, fmt.Errorf("rdb: admit: unexpected answer %d", code)
}

// Unreserve gives back the backlog place of a lead that Admit counted but
// that was not enqueued (the enqueue failed, or found the task there),
// and takes a delivered or dead-lettered lead out of its site's backlog.
func (s *Store) Unreserve(ctx context.Context, queue, site string) error {
	return unreserveScript.Run(ctx, s.c, []string{BacklogKey(queue)}, site).Err()
}

// Refund gives back the bytes Admit charged to a's site for a lead that
// was not enqueued after all (the enqueue failed, or found the task
// there: a repeat keeps nothing more).
func (s *Store) Refund(ctx context.Context, a AdmitArgs) error {
	if a.ShareMax <= 0 || a.Bytes <= 0 {
		return nil
	}
	now, bucket := a.bucket()
	return s.c.HIncrBy(ctx, KeptKey(a.Queue, a.Site), strconv.FormatInt(now/bucket, 10), -a.Bytes).Err()
}

// Count counts a lead enqueued outside Admit (one handed back from the
// dead-letter store) in its site's backlog, with no cap.
func (s *Store) Count(ctx context.Context, queue, site string) error {
	return s.c.HIncrBy(ctx, BacklogKey(queue), site, 1).Err()
}

// Backlog counts the undelivered leads of site and of the whole queue,
// for a check ahead of a batch (each lead of it is still held to the caps
// by Admit) and for operators.
func (s *Store) Backlog(ctx context.Context, queue, site string) (siteN, total int64, err error) {
	var sc *redis.StringCmd
	var sizes []*redis.IntCmd
	keys := asynqQueueKeys(queue)
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		sc = p.HGet(ctx, BacklogKey(queue), site)
		sizes = append(sizes, p.LLen(ctx, keys[0]), p.LLen(ctx, keys[1]), p.ZCard(ctx, keys[2]), p.ZCard(ctx, keys[3]))
		return nil
	})
	if err = nilErr(err); err != nil {
		return 0, 0, err
	}
	for _, c := range sizes {
		total += c.Val()
	}
	if total == 0 {
		return 0, 0, nil // as reserveScript sees it: nothing undelivered
	}
	siteN, _ = strconv.ParseInt(sc.Val(), 10, 64)
	return siteN, total, nil
}

// LeadRecord is a lead's admission record, as the previous version wrote
// it (see LeadKey).
type LeadRecord struct {
	// Site is the site that sent the lead.
	Site string
	// Sum is the digest of its content.
	Sum string
	// At is when intake admitted it.
	At time.Time
}

// Lead returns what the store knows of a lead whose task asynq may have
// forgotten: its admission record (zero if none) and its delivered marker
// (nil if none).
func (s *Store) Lead(ctx context.Context, id string) (LeadRecord, *Marker, error) {
	var rec *redis.MapStringStringCmd
	var mk, legacy, owner *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGetAll(ctx, LeadKey(id))
		mk = p.Get(ctx, DeliveredKey(id))
		if !s.cluster {
			legacy = p.Get(ctx, LegacyDeliveredKey(id))
			owner = p.Get(ctx, LegacyOwnerKey(id))
		}
		return nil
	})
	if err = nilErr(err); err != nil {
		return LeadRecord{}, nil, err
	}
	r := rec.Val()
	lr := LeadRecord{Site: r["site"], Sum: r["sum"], At: fromMS(r["at"])}
	if lr.Site == "" && owner != nil {
		lr.Site = owner.Val()
	}
	raw, gerr := mk.Result()
	if errors.Is(gerr, redis.Nil) && legacy != nil {
		raw, gerr = legacy.Result()
	}
	if gerr != nil {
		return lr, nil, nil
	}
	m, err := parseMarkerOf(id, raw)
	return lr, m, err
}

// DeliveredOn returns how many leads were delivered on day's UTC date.
func (s *Store) DeliveredOn(ctx context.Context, day time.Time) (int64, error) {
	n, err := s.c.Get(ctx, DeliveredCountKey(day.UTC().Format("2006-01-02"))).Int64()
	return n, nilErr(err)
}
