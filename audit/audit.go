package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/crm"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
	"leadrelay/notify"
)

// Defaults of Options, which config's LEADRELAY_AUDIT_* settings take.
const (
	// DefaultInterval is how often the fleet audits.
	DefaultInterval = 10 * time.Minute
	// DefaultWindow is how far back an audit looks at delivered leads.
	DefaultWindow = time.Hour
	// DefaultSettle is how long a content match stays unexplained before
	// it counts as a duplicate: a reconcile wait and a CRM timeout.
	DefaultSettle = 2*time.Minute + 30*time.Second
)

// maxNotified bounds the notifications one audit sends; the rest are
// logged and counted.
const maxNotified = 10

// Source is the CRM as an audit reads it back; crm.API is one.
type Source interface {
	// ReadBack reads the CRM's leads with an id above floor.
	ReadBack(ctx context.Context, floor int64) (crm.ReadBack, error)
	// SentHash is the content hash of p as it was sent.
	SentHash(p lead.Payload) string
}

// Recorder takes an audit's figures; *metrics.Metrics is one.
type Recorder interface {
	// Audited records an audit at at that checked checked delivered
	// leads and found newDuplicates and newMissing not found before.
	Audited(at time.Time, checked, newDuplicates, newMissing int)
}

// Options tune an Auditor. Zero fields take their defaults.
type Options struct {
	// Queue is the asynq queue of lead tasks; "" is lead.DefaultQueue.
	Queue string
	// Interval is how often Loop audits (DefaultInterval).
	Interval time.Duration
	// Window is how far back an audit looks (DefaultWindow); asynq keeps
	// delivered tasks for LEADRELAY_DEDUP_TTL, so a longer one sees no more.
	Window time.Duration
	// Settle is how long a CRM lead with a delivered lead's content but
	// no record must stay so before it is a duplicate (DefaultSettle).
	Settle time.Duration
	// PageSize is how many delivered tasks one read takes (200).
	PageSize int
	// MaxPages bounds the pages of delivered tasks one audit reads (50).
	MaxPages int
	// Codec opens the leads' payloads.
	Codec lead.Codec
	// IDKey keys the content hashes compared (lead.IDKey.SentSum): the
	// delivered leads' envelopes keep them keyed, so the hashes read back
	// from the CRM are keyed alike. It must be the workers' key.
	IDKey lead.IDKey
	// Clock returns the time; nil is time.Now. The worker passes Redis's.
	Clock func() time.Time
	// Notifier is told of every new find (at most 10 an audit); nil tells
	// nobody.
	Notifier notify.Notifier
	// Recorder takes each audit's figures; nil records nothing.
	Recorder Recorder
	// Log is told of every find; nil logs nothing.
	Log *zap.Logger
}

func (o Options) withDefaults() Options {
	if o.Queue == "" {
		o.Queue = lead.DefaultQueue
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.PageSize <= 0 {
		o.PageSize = 200
	}
	if o.MaxPages <= 0 {
		o.MaxPages = 50
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Notifier == nil {
		o.Notifier = notify.Nop{}
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return o
}

// Report is one audit's result, as ctl and the ops listener show it.
type Report struct {
	// At is when the audit ran.
	At time.Time `json:"at"`
	// Window is how far back it looked, as a Go duration.
	Window string `json:"window"`
	// Checked is the delivered leads it checked.
	Checked int `json:"checked"`
	// Read is the CRM leads it read back.
	Read int `json:"crm_read"`
	// Duplicates are the CRM leads made twice within the window.
	Duplicates []Find `json:"duplicates,omitempty"`
	// Missing are the delivered leads the CRM does not list.
	Missing []Find `json:"missing,omitempty"`
	// Settling counts content matches not yet settled.
	Settling int `json:"settling,omitempty"`
	// Unreadable counts delivered tasks the audit could not open.
	Unreadable int `json:"unreadable,omitempty"`
	// NewDuplicates and NewMissing are the finds no audit found before.
	NewDuplicates int `json:"new_duplicates,omitempty"`
	NewMissing    int `json:"new_missing,omitempty"`
}

// Line is the report in one line for people.
func (r Report) Line() string {
	return fmt.Sprintf("%s: %d delivered leads of the last %s checked against %d CRM leads: %d duplicates, %d missing",
		r.At.UTC().Format(time.RFC3339), r.Checked, r.Window, r.Read, len(r.Duplicates), len(r.Missing))
}

// Auditor audits the CRM. Build it with New; Run and Loop are safe for
// concurrent use.
type Auditor struct {
	src   Source
	store *rdb.Store
	insp  *asynq.Inspector
	o     Options
}

// New returns an Auditor reading the CRM through src and the relay's
// records from rc.
func New(src Source, rc redis.UniversalClient, o Options) *Auditor {
	return &Auditor{src: src, store: rdb.New(rc), insp: asynq.NewInspectorFromRedisClient(rc), o: o.withDefaults()}
}

// Loop audits every Interval, when it is this process's turn in the
// fleet, until ctx is done.
func (a *Auditor) Loop(ctx context.Context) {
	for {
		wait := time.NewTimer(a.o.Interval)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		a.turn(ctx)
	}
}

// turn audits when no other process of the fleet took this interval.
func (a *Auditor) turn(ctx context.Context) {
	if mine, err := a.store.AuditTake(ctx, a.o.Interval*9/10); err != nil || !mine {
		return
	}
	actx, cancel := context.WithTimeout(ctx, a.o.Interval/2)
	defer cancel()
	if _, err := a.Run(actx); err != nil && ctx.Err() == nil {
		a.o.Log.Warn("CRM audit failed; the next runs in one interval", zap.Error(err))
	}
}

// Run audits once now: reads the delivered leads of the window and the
// CRM's leads since, records and tells what it found, and keeps the
// report.
func (a *Auditor) Run(ctx context.Context) (Report, error) {
	now := a.o.Clock()
	ds, unreadable, err := a.delivered(ctx, now.Add(-a.o.Window))
	if err != nil {
		return Report{}, fmt.Errorf("audit: read delivered leads: %w", err)
	}
	rep := Report{At: now, Window: a.o.Window.String(), Checked: len(ds), Unreadable: unreadable}
	if len(ds) > 0 {
		floor := ds[0].CRMID
		for _, d := range ds {
			floor = min(floor, d.CRMID)
		}
		rb, err := a.src.ReadBack(ctx, floor-1)
		if err != nil {
			return Report{}, fmt.Errorf("audit: read back the CRM: %w", err)
		}
		rep.Read = len(rb.Leads)
		for i := range rb.Leads {
			rb.Leads[i].Hash = a.o.IDKey.SentSum(rb.Leads[i].Hash)
		}
		if err := a.settle(ctx, now, judge(ds, rb), &rep); err != nil {
			return Report{}, fmt.Errorf("audit: record finds: %w", err)
		}
	}
	if a.o.Recorder != nil {
		a.o.Recorder.Audited(rep.At, rep.Checked, rep.NewDuplicates, rep.NewMissing)
	}
	b, _ := json.Marshal(rep)
	if err := a.store.AuditSave(ctx, b, 2*a.o.Interval); err != nil {
		return rep, fmt.Errorf("audit: keep the report: %w", err)
	}
	return rep, nil
}

// Last is the fleet's latest audit report, kept for two intervals; ok is
// false when none is kept.
func Last(ctx context.Context, rc redis.UniversalClient) (rep Report, ok bool, err error) {
	b, err := rdb.New(rc).AuditLast(ctx)
	if err != nil || b == nil {
		return Report{}, false, err
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return Report{}, false, fmt.Errorf("audit: the kept report: %w", err)
	}
	return rep, true, nil
}
