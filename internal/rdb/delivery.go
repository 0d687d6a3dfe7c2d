package rdb

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/delivery"
)

// Delivery states of a lead's attempt record (AttemptKey). The delivered
// state is the marker itself (DeliveredKey); no record means admitted and
// never sent.
const (
	// StateSending is written ahead of every add: a worker that dies, or a
	// marker that cannot be written, leaves the lead uncertain.
	StateSending = string(delivery.AttemptSending)
	// StateUncertain: an add got an answer that does not say whether the
	// CRM stored the lead; SettleAt says when a look-up may run.
	StateUncertain = string(delivery.AttemptUncertain)
	// StateFailed: the last add certainly stored nothing.
	StateFailed = string(delivery.AttemptFailed)
)

// Attempt is a lead's attempt record.
type Attempt struct {
	// State is StateSending, StateUncertain, StateFailed or "" (never sent).
	State string
	// FirstAt is when the first add was sent; SentAt when the last was.
	FirstAt, SentAt time.Time
	// SettleAt, for StateUncertain, is the earliest time a look-up may
	// run: the earlier request cannot commit after it. Zero means SentAt
	// plus the worker's reconcile wait.
	SettleAt time.Time
	// Sends counts adds sent.
	Sends int
	// Dead says the lead was dead-lettered once; a delivery must drop its
	// dead-letter record.
	Dead bool
	// Watermark is the highest CRM id the v1 journal knew when the first
	// add was sent (0 unknown): the lead, if stored, has a higher id.
	Watermark int64
	// Runs counts the runs that spent an attempt or ended the lead, across
	// re-runs by operators; a delivered lead's record keeps only this,
	// its delivering run counted (Failed, Finish). Read by ReadAttempt.
	Runs int
	// Reason is the last failed run's reason (Failed). Read by
	// ReadAttempt.
	Reason delivery.Reason
}

// Uncertain reports whether an earlier add may have stored the lead.
func (a Attempt) Uncertain() bool { return a.State == StateSending || a.State == StateUncertain }

func parseAttempt(f []string) Attempt {
	n, _ := strconv.Atoi(f[4])
	w, _ := strconv.ParseInt(f[6], 10, 64)
	return Attempt{State: f[0], FirstAt: fromMS(f[1]), SentAt: fromMS(f[2]), SettleAt: fromMS(f[3]),
		Sends: n, Dead: f[5] == "1", Watermark: w}
}

// beginScript is Begin on a Cluster, beginAllScript on a single primary
// (scripts/begin.lua, scripts/begin_all.lua).
var (
	beginScript    = load("begin")
	beginAllScript = load("begin_all")
)

// BeginArgs are the inputs of Begin.
type BeginArgs struct {
	// ID is the lead id; Token identifies this worker's lock.
	ID, Token string
	// Now is the time of the attempt.
	Now time.Time
	// LockTTL is the lock's expiry; RecordTTL the attempt record's.
	LockTTL, RecordTTL time.Duration
	// Watermark is the v1 journal's highest CRM id as this worker last
	// saw it (Begun.JournalTop of its previous run, or a refresh).
	Watermark int64
	// CountSend counts the send in the v1 journal's refresh counter.
	CountSend bool
	// ReadTop reads the highest CRM id any delivery recorded (v2's
	// watermark; v1 uses the journal's).
	ReadTop bool
}

// Begun is what Begin found. Exactly one of Marker, Busy > 0 or a held
// lock (Locked) results.
type Begun struct {
	// Marker is the lead's delivered marker, if it has one.
	Marker *Marker
	// Busy > 0: another worker holds the lock for this long.
	Busy time.Duration
	// Locked: this worker holds the lock.
	Locked bool
	// Send: the attempt record now says StateSending; the caller may add
	// (or must Release with Unsend). False with Locked: Attempt is
	// uncertain and must be reconciled first.
	Send bool
	// Attempt is the attempt record (after the write-ahead when Send).
	Attempt Attempt
	// Circuit is the fleet's CRM circuit as it stands.
	Circuit Circuit
	// JournalSends counts what the v1 journal's next refresh must list
	// above its top: the sends since the list call of its latest refresh,
	// and the leads of the newest second that page showed while the CRM
	// may still be filling it (JournalPage.NewestN); and
	// JournalTop is the journal's highest CRM id as the fleet recorded it
	// (with CountSend): the watermark of this worker's next send.
	JournalSends, JournalTop int64
	// JournalReady: the journal has been merged at least once.
	JournalReady bool
	// CRMTop is the highest CRM id any delivery recorded (with ReadTop).
	CRMTop int64
	// Epoch is the fleet epoch (EpochKey) as Begin read it, 0 when Redis
	// has none: lower than a worker last counted means Redis came back
	// with older data (EpochCheck).
	Epoch int64
	// Rollback is the rollback a worker last found (within the guard;
	// RollbackKey), zero when none did.
	Rollback Rollback
}

// Begin checks the marker, takes the lock and writes the attempt record
// ahead of the add, and reads the CRM circuit: one round trip (on a
// single primary, one script).
func (s *Store) Begin(ctx context.Context, a BeginArgs) (Begun, error) {
	read := s.beginScripted
	if s.cluster {
		read = s.beginPipelined
	}
	r, err := read(ctx, a)
	if err != nil {
		return Begun{}, err
	}
	var b Begun
	if b.Circuit, err = parseCircuit(r.circ); err != nil {
		return Begun{}, err
	}
	r.journal(&b)
	b.CRMTop, _ = strconv.ParseInt(r.top, 10, 64)
	b.Epoch, _ = strconv.ParseInt(r.epoch, 10, 64)
	b.Rollback = parseRollback(r.rollback)
	return r.answer(a.ID, b)
}

// beginReply is Begin's answer before parsing, whichever way it was read.
type beginReply struct {
	res      []string // begin's answer
	circ     any      // the circuit's
	seq      string   // the v1 journal's: seq after this send, from, max, seen
	jf       [3]string
	top      string // crm_top
	epoch    string // the fleet epoch
	rollback string // when a rollback was found, ms
}

// beginPipelined reads Begin's answer in one pipeline of scripts and
// commands that each touch one slot (a cluster).
func (s *Store) beginPipelined(ctx context.Context, a BeginArgs) (beginReply, error) {
	var (
		begin, c *evalCall
		sends    *redis.IntCmd
		journal  *redis.SliceCmd
		topCmd   *redis.StringCmd
		epoch    *redis.StringCmd
		rollback *redis.StringCmd
	)
	cmds, _ := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		begin = queue(ctx, p, beginScript, []string{DeliveredKey(a.ID), LockKey(a.ID), AttemptKey(a.ID)},
			a.Token, a.LockTTL.Milliseconds(), ms(a.Now), a.RecordTTL.Milliseconds(), a.Watermark)
		c = queue(ctx, p, circuitPeekScript, []string{BreakerKey}, ms(a.Now))
		if a.CountSend {
			sends = p.HIncrBy(ctx, JournalMetaKey, "seq", 1)
			journal = p.HMGet(ctx, JournalMetaKey, "from", "max", "seen")
		}
		if a.ReadTop {
			topCmd = p.HGet(ctx, JournalMetaKey, "crm_top")
		}
		epoch = p.Get(ctx, EpochKey)
		rollback = p.Get(ctx, RollbackKey)
		return nil
	})
	if err := pipeErr(cmds, s.c, begin, c); err != nil {
		return beginReply{}, err
	}
	var r beginReply
	var err error
	if r.res, err = asStrings(begin.cmd.Val()); err != nil {
		return beginReply{}, err
	}
	r.circ = c.cmd.Val()
	if sends != nil {
		r.seq = strconv.FormatInt(sends.Val(), 10)
		if v := journal.Val(); len(v) == 3 {
			r.jf = [3]string{str(v[0]), str(v[1]), str(v[2])}
		}
	}
	if topCmd != nil {
		r.top = topCmd.Val()
	}
	r.epoch, r.rollback = epoch.Val(), rollback.Val()
	return r, nil
}

// beginScripted reads Begin's answer with one script (a single primary).
func (s *Store) beginScripted(ctx context.Context, a BeginArgs) (beginReply, error) {
	v, err := s.eval(ctx, beginAllScript, []string{DeliveredKey(a.ID), LockKey(a.ID), AttemptKey(a.ID),
		LegacyDeliveredKey(a.ID), BreakerKey, JournalMetaKey, EpochKey, RollbackKey},
		a.Token, a.LockTTL.Milliseconds(), ms(a.Now), a.RecordTTL.Milliseconds(), a.Watermark,
		boolArg(a.CountSend), boolArg(a.ReadTop)).Result()
	if err != nil {
		return beginReply{}, err
	}
	all, err := asStrings(v)
	if err != nil || len(all) != 20 {
		return beginReply{}, fmt.Errorf("rdb: begin: unexpected answer %v", v)
	}
	r := beginReply{res: all[:8], circ: toAny(all[8:13]), seq: all[13],
		jf: [3]string{all[14], all[15], all[16]}, top: all[17], epoch: all[18], rollback: all[19]}
	if r.res[0] == "delivered" || r.res[0] == "busy" {
		r.res = r.res[:2]
	}
	return r, nil
}

// journal fills b's v1 journal fields when the send was counted.
func (r beginReply) journal(b *Begun) {
	if r.seq == "" {
		return
	}
	n, _ := strconv.ParseInt(r.seq, 10, 64)
	b.JournalReady = r.jf[0] != ""
	b.JournalTop, _ = strconv.ParseInt(r.jf[1], 10, 64)
	seen, _ := strconv.ParseInt(r.jf[2], 10, 64)
	b.JournalSends = n - seen
}

// answer completes b with begin's own answer: a marker, busy, or a lock.
func (r beginReply) answer(id string, b Begun) (Begun, error) {
	res := r.res
	var err error
	switch {
	case len(res) == 2 && res[0] == "delivered":
		b.Marker, err = parseMarkerOf(id, res[1])
		return b, err
	case len(res) == 2 && res[0] == "busy":
		n, _ := strconv.ParseInt(res[1], 10, 64)
		b.Busy = max(time.Duration(n)*time.Millisecond, time.Millisecond)
		return b, nil
	case len(res) == 8 && (res[0] == "send" || res[0] == "uncertain"):
		b.Locked, b.Send = true, res[0] == "send"
		b.Attempt = parseAttempt(res[1:])
		return b, nil
	}
	return Begun{}, fmt.Errorf("rdb: begin: unexpected answer %q", res)
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, v := range ss {
		out[i] = v
	}
	return out
}

// isNoScript: the server has no such script (its cache is empty after a
// restart or failover); go-redis itself tells it so.
func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

// evalCall is a script queued in a pipeline, kept so that a NOSCRIPT
// answer (a Redis that restarted or failed over has an empty script
// cache, and a pipeline cannot fall back to EVAL) can be run again on its
// own, without repeating the pipeline's other commands.
type evalCall struct {
	s    *redis.Script
	keys []string
	args []any
	cmd  *redis.Cmd
}

func queue(ctx context.Context, p redis.Pipeliner, s *redis.Script, keys []string, args ...any) *evalCall {
	return &evalCall{s: s, keys: keys, args: args, cmd: s.EvalSha(ctx, p, keys, args...)}
}

// pipeErr reruns the scripts the server did not know, then returns the
// first error of a pipeline's commands, redis.Nil aside.
func pipeErr(cmds []redis.Cmder, rc redis.Scripter, calls ...*evalCall) error {
	for _, c := range calls {
		if c != nil && isNoScript(c.cmd.Err()) {
			c.cmd = c.s.Run(context.Background(), rc, c.keys, c.args...)
		}
	}
	for _, c := range calls {
		if c != nil {
			if err := nilErr(c.cmd.Err()); err != nil {
				return err
			}
		}
	}
	for _, c := range cmds {
		if _, script := c.(*redis.Cmd); script {
			continue // checked above, as rerun
		}
		if err := nilErr(c.Err()); err != nil {
			return err
		}
	}
	return nil
}

var markSendingScript = load("mark_sending")

// Marking is what MarkSending did.
type Marking struct {
	// Marker is the lead's delivered marker: it was delivered meanwhile
	// and must not be sent. Nil otherwise.
	Marker *Marker
	// Fence is Fenced when another run holds the lead: nothing was
	// written, and this run must not send.
	Fence Fence
}

// MarkSending writes the attempt record ahead of a resend by the run of
// token, unless the lead is delivered or the run no longer holds it.
func (s *Store) MarkSending(ctx context.Context, id, token string, now time.Time, ttl time.Duration, watermark int64) (Marking, error) {
	v, err := s.eval(ctx, markSendingScript, []string{DeliveredKey(id), AttemptKey(id), LockKey(id)},
		ms(now), ttl.Milliseconds(), watermark, token).Result()
	if err != nil {
		return Marking{}, err
	}
	r, err := asStrings(v)
	switch {
	case err != nil:
		return Marking{}, err
	case len(r) == 2 && r[0] == "delivered":
		m, err := parseMarkerOf(id, r[1])
		return Marking{Marker: m}, err
	case len(r) == 1 && r[0] == "fenced":
		return Marking{Fence: Fenced}, nil
	case len(r) == 1 && r[0] == "sending":
		return Marking{}, nil
	}
	return Marking{}, fmt.Errorf("rdb: mark sending: unexpected answer %q", r)
}

// Release modes.
const (
	// ReleaseKeep leaves the attempt record as it is.
	ReleaseKeep = iota
	// ReleaseUnsend undoes Begin's write-ahead: no add was sent.
	ReleaseUnsend
	// ReleaseSet records State (and SettleAt) for the add just sent.
	ReleaseSet
)

// Release is how a delivery that did not finish leaves its record.
type Release struct {
	// Mode is ReleaseKeep, ReleaseUnsend or ReleaseSet.
	Mode int
	// State and SettleAt, with ReleaseSet.
	State    string
	SettleAt time.Time
}

var releaseScript = load("release")

// Release records how the run of token ended, unless it no longer holds
// the lead (Fenced: the record is the newer run's), and drops its lock if
// it still has it.
func (s *Store) Release(ctx context.Context, id, token string, r Release) (Fence, error) {
	n, err := s.eval(ctx, releaseScript, []string{LockKey(id), AttemptKey(id), DeliveredKey(id)},
		token, r.Mode, r.State, ms(r.SettleAt)).Int64()
	return fenceOf(n), err
}

var renewScript = load("renew")

// Renew extends this worker's lock; false means it was lost.
func (s *Store) Renew(ctx context.Context, id, token string, ttl time.Duration) (bool, error) {
	n, err := renewScript.Run(ctx, s.c, []string{LockKey(id)}, token, ttl.Milliseconds()).Int()
	return n == 1, err
}

// Finish's scripts: finishScript on a Cluster (the lead's keys), with
// claimScript, raiseScript and unreserveScript beside it; finishAllScript
// on a single primary, all of them in one.
var (
	finishScript    = load("finish")
	claimScript     = load("claim")
	raiseScript     = load("raise")
	finishAllScript = load("finish_all")
)

// dayCounterTTL is how long a day's delivered counter lives.
const dayCounterTTL = 8 * 24 * time.Hour

// FinishArgs are the inputs of Finish.
type FinishArgs struct {
	// Marker is the delivery to record.
	Marker Marker
	// Queue is the lead's asynq queue, whose backlog counts it.
	Queue string
	// Token is this worker's lock.
	Token string
	// TTL is how long the marker (and the admission record) live.
	TTL time.Duration
	// ClaimTTL is how long the CRM id stays claimed.
	ClaimTTL time.Duration
	// Day is the UTC date (YYYY-MM-DD) counting the delivery.
	Day string
	// Legacy writes the previous version's marker too (on a single
	// primary), for while a worker of that version serves the queue.
	Legacy bool
	// Run is the delivering run's timeline entry (as RecordRun writes
	// it), written with the marker, once however often Finish is
	// retried; nil writes none. A plain first run (impliedRun) on a lead
	// with no timeline writes none either: Runs reads it from the marker.
	Run *delivery.Run
	// Result, on a single primary, is written as the result of the lead's
	// asynq task (its id is the lead id) if that task is there, as
	// asynq's ResultWriter would; Finished.ResultKept says it was. Empty
	// writes none.
	Result string
}

// Finished is what Finish found.
type Finished struct {
	// Old is the marker that was there already (then none was written).
	Old *Marker
	// ClaimedBy is the lead that holds the CRM id, when not this one.
	ClaimedBy string
	// Fence is Fenced when another run held the lead: the marker was
	// written all the same (the CRM's word is no run's claim), but that
	// run's attempt record and lock were left to it.
	Fence Fence
	// ResultKept: FinishArgs.Result was handed to the script (a single
	// primary); on a Cluster the caller writes it.
	ResultKept bool
}

// Finish records a delivery in one round trip: the marker, the CRM id's
// claim, the day's counters (all, and the site's), the site's last
// delivery and its backlog count, the run's timeline entry and (single
// primary) the task's result. On a single primary the
// counts change only with the marker's write, so a Finish retried after a
// lost answer counts once; on a Cluster they sit in other slots and change
// with every call.
func (s *Store) Finish(ctx context.Context, a FinishArgs) (Finished, error) {
	m := a.Marker
	entry := ""
	if a.Run != nil {
		b, _, err := runEntryOf(*a.Run)
		if err != nil {
			return Finished{}, err
		}
		entry = string(b)
	}
	var (
		r   []string
		err error
	)
	if s.cluster {
		r, err = s.finishPipelined(ctx, a, entry)
	} else {
		r, err = s.finishScripted(ctx, a, entry)
	}
	if err != nil {
		return Finished{}, err
	}
	old, holder, held := r[0], r[1], r[2]
	f := Finished{Fence: Owned, ResultKept: !s.cluster && a.Result != ""}
	if held != "1" {
		f.Fence = Fenced
	}
	if old != "" {
		if f.Old, err = parseMarkerOf(m.LeadID, old); err != nil {
			return Finished{}, err
		}
	}
	if holder != "" && holder != m.LeadID {
		f.ClaimedBy = holder
	}
	return f, nil
}

// finishPipelined is Finish on a Cluster: the lead's script and, in
// other slots, the claim, the counters and the backlog, in one pipeline.
// It answers {old marker, claim holder, held}.
func (s *Store) finishPipelined(ctx context.Context, a FinishArgs, entry string) ([]string, error) {
	m := a.Marker
	var fin, claim, top, uncount *evalCall
	cmds, _ := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		fin = queue(ctx, p, finishScript, []string{DeliveredKey(m.LeadID), AttemptKey(m.LeadID), LockKey(m.LeadID), TimelineKey(m.LeadID)},
			m.encode(), a.TTL.Milliseconds(), a.Token, entry, TimelineCap, a.TTL.Milliseconds(), boolArg(impliedRun(a.Run, m)))
		if m.CRMID > 0 {
			claim = queue(ctx, p, claimScript, s.claimKeys(m.CRMID), m.CRMID, m.LeadID, a.ClaimTTL.Milliseconds())
			top = queue(ctx, p, raiseScript, []string{JournalMetaKey}, "crm_top", m.CRMID)
		}
		day := DeliveredCountKey(a.Day)
		p.Incr(ctx, day)
		p.Expire(ctx, day, dayCounterTTL)
		if m.Site != "" {
			uncount = queue(ctx, p, unreserveScript, []string{BacklogKey(a.Queue)}, m.Site)
			sites := DeliveredSitesKey(a.Day)
			p.HIncrBy(ctx, sites, m.Site, 1)
			p.Expire(ctx, sites, dayCounterTTL)
			p.HSet(ctx, LastDeliveredKey, m.Site, ms(m.At))
		}
		return nil
	})
	if err := pipeErr(cmds, s.c, fin, claim, top, uncount); err != nil {
		return nil, err
	}
	r, err := asStrings(fin.cmd.Val())
	if err != nil || len(r) != 2 {
		return nil, fmt.Errorf("rdb: finish: unexpected answer %v", fin.cmd.Val())
	}
	holder := ""
	if claim != nil {
		holder, _ = claim.cmd.Val().(string)
	}
	return []string{r[0], holder, r[1]}, nil
}

// finishScripted is Finish with one script (a single primary). It
// answers {old marker, claim holder, held}.
func (s *Store) finishScripted(ctx context.Context, a FinishArgs, entry string) ([]string, error) {
	m := a.Marker
	legacy := ""
	if a.Legacy {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		legacy = string(b)
	}
	v, err := s.eval(ctx, finishAllScript, []string{DeliveredKey(m.LeadID), AttemptKey(m.LeadID), LockKey(m.LeadID),
		ClaimsKey(m.CRMID), LegacyClaimKey(m.CRMID), JournalMetaKey, DeliveredCountKey(a.Day), BacklogKey(a.Queue),
		LegacyDeliveredKey(m.LeadID), DeliveredSitesKey(a.Day), LastDeliveredKey, TimelineKey(m.LeadID),
		AsynqTaskKey(a.Queue, m.LeadID)},
		m.encode(), a.TTL.Milliseconds(), a.Token, m.CRMID, m.LeadID, a.ClaimTTL.Milliseconds(), m.Site, legacy,
		dayCounterTTL.Milliseconds(), ms(m.At), entry, TimelineCap, a.TTL.Milliseconds(), a.Result,
		boolArg(impliedRun(a.Run, m))).Result()
	if err != nil {
		return nil, err
	}
	r, err := asStrings(v)
	if err != nil || len(r) != 3 {
		return nil, fmt.Errorf("rdb: finish: unexpected answer %v", v)
	}
	return r, nil
}

// Claim claims CRM id crmID for lead id, for a reconcile that matched it
// by content: true when the id is free or held by this lead already.
func (s *Store) Claim(ctx context.Context, crmID int64, id string, ttl time.Duration) (bool, error) {
	holder, err := claimScript.Run(ctx, s.c, s.claimKeys(crmID), crmID, id, ttl.Milliseconds()).Text()
	return holder == id, err
}

// claimKeys are claimScript's keys for a CRM id.
func (s *Store) claimKeys(crmID int64) []string {
	if s.cluster {
		return []string{ClaimsKey(crmID)}
	}
	return []string{ClaimsKey(crmID), LegacyClaimKey(crmID)}
}

var (
	dropMarkerScript = load("drop_marker")
	dropLegacyScript = load("drop_legacy_marker")
)

// DropMarker deletes a delivered marker that records other content than
// the task at hand (an idempotency key reused after its task expired):
// that task is a different lead and must be delivered. Each key is
// deleted only if it still holds that delivery (a new delivery of the
// other lead may have written it since).
func (s *Store) DropMarker(ctx context.Context, id string, m *Marker) error {
	if err := dropMarkerScript.Run(ctx, s.c, []string{DeliveredKey(id)}, m.raw).Err(); err != nil {
		return err
	}
	if s.cluster {
		return nil
	}
	return dropLegacyScript.Run(ctx, s.c, []string{LegacyDeliveredKey(id)}, m.CRMID).Err()
}

var markDeadScript = load("mark_dead")

// MarkDead records that the run of token dead-lettered a lead of queue:
// the dead flag, so a later delivery drops its dead-letter record, the
// state it died in (so a requeued uncertain lead is reconciled first),
// and the lead out of its site's backlog count. A run that no longer
// holds the lead (Fenced) writes only the flag: the lead is the newer
// run's, not dead. A delivered lead is left alone (Fenced).
func (s *Store) MarkDead(ctx context.Context, queueName, id, token, site, state string, ttl time.Duration) (Fence, error) {
	n, err := markDeadScript.Run(ctx, s.c, []string{AttemptKey(id), LockKey(id), DeliveredKey(id)},
		token, state, ttl.Milliseconds()).Int64()
	if err != nil || n != 1 {
		return fenceOf(n), err
	}
	if site != "" {
		if err := s.Unreserve(ctx, queueName, site); err != nil {
			return Owned, err
		}
	}
	return Owned, nil
}
