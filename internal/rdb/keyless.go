package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	keylessScript       = load("keyless")
	admitKeylessScript  = load("admit_keyless")
	keylessLegacyScript = load("keyless_legacy")
)

// Keyless is the identity of a lead site sent without an idempotency key,
// whose content is named name (lead.IDKey.Keyless): fresh, which then
// lasts window from this first submission, or the one a submission of the
// same content within the window opened, whose repeat is counted (repeats
// > 0 then: how many so far).
func (s *Store) Keyless(ctx context.Context, site, name, fresh string, window time.Duration) (id string, repeats int, err error) {
	v, err := keylessScript.Run(ctx, s.c, []string{KeylessKey(site, name)}, fresh, window.Milliseconds()).Slice()
	if err != nil {
		return "", 0, err
	}
	if len(v) != 2 {
		return "", 0, fmt.Errorf("rdb: keyless: unexpected answer %v", v)
	}
	id, _ = v[0].(string)
	n, _ := v[1].(int64)
	return id, int(n), nil
}

// KeylessArgs name a keyless lead for AdmitKeyless.
type KeylessArgs struct {
	// Site sent the lead; Name names its content (lead.IDKey.Keyless).
	Site, Name string
	// Fresh is the identity a first submission opens the window under,
	// for Window.
	Fresh  string
	Window time.Duration
	// LegacyID, when set, is the id an intake of the version before keyed
	// ids gave the same content; Recent says, from what Redis holds of it
	// (Known), whether that lead is the same one (received or delivered
	// within the window). Its identity is then Legacy.
	LegacyID, Legacy string
	Recent           func(payload []byte, m *Marker) bool
}

// KeylessAdmitted is what AdmitKeyless found.
type KeylessAdmitted struct {
	// Identity is the lead's: Fresh, a repeat's (Repeats > 0), or Legacy.
	Identity string
	Repeats  int
	// Admitted is the admission of the lead built under Fresh, made in the
	// same step (a single primary, a first submission); nil when none was
	// made: the caller admits the lead under Identity (Admit).
	Admitted *Admitted
}

// AdmitKeyless is Keyless and, for a first submission, Admit of the lead
// a built under k.Fresh, in one script on a single primary
// (admit_keyless, which reads the legacy lead too), run in the store's
// group: concurrent keyless leads share their round trips. When the
// legacy lead turns out recent, the admission made for Fresh is given
// back and the record renamed (keyless_legacy).
// On a Cluster the keyless record lives in a slot of its own: Known, then
// Keyless, and no admission.
func (s *Store) AdmitKeyless(ctx context.Context, k KeylessArgs, a AdmitArgs) (KeylessAdmitted, error) {
	if s.cluster {
		fresh := k.Fresh
		if k.LegacyID != "" {
			payload, m, err := s.Known(ctx, a.Queue, k.LegacyID)
			if err != nil {
				return KeylessAdmitted{}, err
			}
			if k.Recent(payload, m) {
				fresh = k.Legacy
			}
		}
		id, n, err := s.Keyless(ctx, k.Site, k.Name, fresh, k.Window)
		return KeylessAdmitted{Identity: id, Repeats: n}, err
	}
	keys := append(append([]string{BacklogKey(a.Queue)}, asynqQueueKeys(a.Queue)...), KeptKey(a.Queue, a.Site),
		DeliveredKey(a.ID), KeylessKey(k.Site, k.Name))
	if k.LegacyID != "" {
		keys = append(keys, AsynqTaskKey(a.Queue, k.LegacyID), DeliveredKey(k.LegacyID), LegacyDeliveredKey(k.LegacyID))
	}
	now, bucket := a.bucket()
	v, err := s.eval(ctx, admitKeylessScript, keys, a.Site, a.SiteMax, a.TotalMax, a.Bytes, a.ShareMax, now, bucket,
		a.Keep.Milliseconds(), k.Fresh, k.Window.Milliseconds()).Result()
	if err != nil {
		return KeylessAdmitted{}, err
	}
	r, ok := v.([]any)
	if !ok || len(r) < 2 || len(r) > 2 && len(r) < 6 {
		return KeylessAdmitted{}, fmt.Errorf("rdb: admit keyless: unexpected answer %v", v)
	}
	n, _ := r[0].(int64)
	id, _ := r[1].(string)
	res := KeylessAdmitted{Identity: id, Repeats: int(n)}
	if len(r) == 2 {
		return res, nil
	}
	ad, err := s.admitted(ctx, a, r[5:], nil)
	if err != nil {
		return KeylessAdmitted{}, err
	}
	res.Admitted = &ad
	if k.LegacyID == "" || id != k.Fresh {
		return res, nil
	}
	payload, m, err := knownRaw{msg: optString(r[2]), mk: optString(r[3]), legacy: optString(r[4])}.read(k.LegacyID)
	if err != nil || !k.Recent(payload, m) {
		return res, err
	}
	return s.keylessLegacy(ctx, k, a, res)
}

// optString is a script's answer element as an optional string: nil
// when Redis answered nil (a key that is absent).
func optString(v any) *string {
	if s, ok := v.(string); ok {
		return &s
	}
	return nil
}

// keylessLegacy renames the keyless record AdmitKeyless opened under
// k.Fresh to k.Legacy and gives back the admission it made for Fresh.
func (s *Store) keylessLegacy(ctx context.Context, k KeylessArgs, a AdmitArgs, res KeylessAdmitted) (KeylessAdmitted, error) {
	if res.Admitted != nil && res.Admitted.Admission == Reserved {
		if err := s.Unreserve(ctx, a.Queue, a.Site); err != nil {
			return KeylessAdmitted{}, err
		}
		if err := s.Refund(ctx, a); err != nil {
			return KeylessAdmitted{}, err
		}
	}
	id, err := keylessLegacyScript.Run(ctx, s.c, []string{KeylessKey(k.Site, k.Name)}, k.Fresh, k.Legacy).Text()
	if err != nil {
		return KeylessAdmitted{}, err
	}
	return KeylessAdmitted{Identity: id, Repeats: res.Repeats}, nil
}

// knownReads are Known's commands queued in a pipeline.
type knownReads struct {
	msg, mk, legacy *redis.StringCmd
}

// queueKnown queues Known's reads of lead id in p.
func (s *Store) queueKnown(ctx context.Context, p redis.Pipeliner, queue, id string) knownReads {
	k := knownReads{msg: p.HGet(ctx, AsynqTaskKey(queue, id), "msg"), mk: p.Get(ctx, DeliveredKey(id))}
	if !s.cluster {
		k.legacy = p.Get(ctx, LegacyDeliveredKey(id))
	}
	return k
}

// raw is what the reads found, each nil when absent.
func (k knownReads) raw() knownRaw {
	var r knownRaw
	if v, err := k.msg.Result(); err == nil {
		r.msg = &v
	}
	if v, err := k.mk.Result(); err == nil {
		r.mk = &v
	}
	if k.legacy != nil {
		if v, err := k.legacy.Result(); err == nil {
			r.legacy = &v
		}
	}
	return r
}

// knownRaw is what Redis holds of a lead, as read: its asynq task's msg
// and its delivered marker, under the current key and the previous
// version's; each nil when absent.
type knownRaw struct {
	msg, mk, legacy *string
}

// read is Known's answer from k: the task's payload (nil without a task)
// and the marker (the current key's, else the previous version's; nil
// without one).
func (k knownRaw) read(id string) (payload []byte, m *Marker, err error) {
	if k.msg != nil {
		if payload, err = taskPayload([]byte(*k.msg)); err != nil {
			return nil, nil, fmt.Errorf("task %s: %w", id, err)
		}
	}
	raw := k.mk
	if raw == nil {
		raw = k.legacy
	}
	if raw == nil {
		return payload, nil, nil
	}
	m, err = parseMarkerOf(id, *raw)
	return payload, m, err
}

// Known reads what Redis holds of lead id: its task's payload in queue
// (nil when asynq holds no task) and its delivered marker (nil when none),
// in one round trip.
func (s *Store) Known(ctx context.Context, queue, id string) (payload []byte, m *Marker, err error) {
	var k knownReads
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		k = s.queueKnown(ctx, p, queue, id)
		return nil
	})
	if err = nilErr(err); err != nil {
		return nil, nil, err
	}
	return k.raw().read(id)
}

// CountKeylessRepeat counts a keyless repeat of lead id of site on day
// (UTC), for operators: per site and day (ctl queues) and per lead, kept
// for keep (its status: ctl lead status, the ops page).
func (s *Store) CountKeylessRepeat(ctx context.Context, site, id string, day time.Time, keep time.Duration) error {
	key := KeylessRepeatsKey(day.UTC().Format("2006-01-02"))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, key, site, 1)
		p.Expire(ctx, key, dayCounterTTL)
		p.Incr(ctx, RepeatsKey(id))
		p.PExpire(ctx, RepeatsKey(id), keep)
		return nil
	})
	return err
}

// Repeats is how many keyless repeats of lead id were counted (0: none,
// or no longer kept).
func (s *Store) Repeats(ctx context.Context, id string) (int, error) {
	n, err := s.c.Get(ctx, RepeatsKey(id)).Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// KeylessRepeatsOn is every site's keyless repeats on day (UTC).
func (s *Store) KeylessRepeatsOn(ctx context.Context, day time.Time) (map[string]int64, error) {
	m, err := s.c.HGetAll(ctx, KeylessRepeatsKey(day.UTC().Format("2006-01-02"))).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(m))
	for site, v := range m {
		n, _ := strconv.ParseInt(v, 10, 64)
		out[site] = n
	}
	return out, nil
}
