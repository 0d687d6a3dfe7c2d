package producer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"leadrelay/internal/fleetclock"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
	"leadrelay/status"
	"leadrelay/tracing"
)

// ErrUnavailable is wrapped by every error that means the lead store (Redis)
// could not take or answer the request. The caller should try again later
// (intake answers 503); the lead was not acknowledged.
var ErrUnavailable = errors.New("producer: lead store unavailable")

// Options tunes a Publisher. The zero value enqueues on lead.DefaultQueue
// with lead's other task defaults and waits for no replica.
type Options struct {
	// Queue is the asynq queue of lead tasks. Empty means lead.DefaultQueue.
	Queue string
	// MaxRetry is the failed attempts a lead may spend before it is dead.
	// Zero means lead.DefaultMaxRetry: a lead is never dead-lettered on its
	// first failure by accident.
	MaxRetry int
	// DedupTTL is how long a delivered task is kept, and so how long a repeat
	// submission is recognised as a duplicate. Zero means lead.DefaultDedupTTL.
	DedupTTL time.Duration
	// KeylessWindow is how long the identity of a lead sent without an
	// idempotency key lasts, from its first submission: the same content
	// within it is one lead (a double submit; the repeat is counted), after
	// it a new lead. Zero means lead.DefaultKeylessWindow.
	KeylessWindow time.Duration
	// WaitReplicas, when positive, makes Publish wait until that many Redis
	// replicas hold the lead before it returns. It needs a client with a
	// Conn method (*redis.Client, including failover clients).
	WaitReplicas int
	// WaitTimeout bounds that wait. Zero means rdb.DefaultSyncTimeout.
	WaitTimeout time.Duration
	// SiteMax and TotalMax cap the undelivered leads of one site and of
	// all sites (LEADRELAY_SITE_MAX_QUEUED, LEADRELAY_MAX_QUEUED): a lead
	// past either gets a *BacklogFullError. Zero means no cap.
	SiteMax, TotalMax int64
	// SiteShare, when set, returns the bytes of Redis's memory one site
	// may keep (LEADRELAY_SITE_MEMORY_SHARE; 0: no share): its leads,
	// undelivered or delivered and kept for DedupTTL, each charged its
	// payload and rdb.KeptOverhead when admitted. A lead past it gets a
	// *BacklogFullError with Bytes set. Nil means no share.
	SiteShare func(ctx context.Context) int64
	// Clock is the host's clock, nil time.Now. The Publisher keeps
	// Redis's time on it (package fleetclock), so the times it stamps
	// (ReceivedAt, the keyless window, the kept-bytes buckets) are the
	// workers' and other intakes' whatever this host's clock says.
	Clock func() time.Time
	// Tracer, when set, traces each Publish (package tracing), and the
	// task carries the publish span's traceparent so the worker's runs
	// join the trace. Nil traces nothing and adds nothing to the task.
	Tracer trace.Tracer
	// Codec seals each lead's fields in its task (lead.Codec). It seals
	// only while every worker serving the queue can open what it seals
	// (see sealGate). The zero Codec writes plaintext payloads.
	Codec lead.Codec
	// IDKey names the leads sent without an idempotency key
	// (LEADRELAY_ID_KEY): their identity and id are keyed with it, so
	// nobody learns them from a lead's content, and so is the content
	// digest a task keeps (lead.IDKey.Digest). Every intake of a relay
	// needs the same key. The zero value is a random key of this
	// Publisher's own for keyless names (a double submit that reaches
	// another process is then two leads), and plain v1 digests: a digest
	// keyed by one process alone would make a site's retry through another
	// intake a reused key.
	IDKey lead.IDKey
}

func (o Options) withDefaults() Options {
	if o.Queue == "" {
		o.Queue = lead.DefaultQueue
	}
	if o.MaxRetry == 0 {
		o.MaxRetry = lead.DefaultMaxRetry
	}
	if o.DedupTTL <= 0 {
		o.DedupTTL = lead.DefaultDedupTTL
	}
	if o.KeylessWindow <= 0 {
		o.KeylessWindow = lead.DefaultKeylessWindow
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = rdb.DefaultSyncTimeout
	}
	return o
}

// Receipt acknowledges a published lead.
type Receipt struct {
	// ID is the relay's lead id, the same for every repeat of a submission.
	ID string
	// Duplicate is true when the lead was already known: nothing new was
	// enqueued.
	Duplicate bool
}

// Publisher enqueues leads and reports their state. It is safe for
// concurrent use. Build one with New.
type Publisher struct {
	rdb    redis.UniversalClient
	store  *rdb.Store
	client *asynq.Client
	insp   *asynq.Inspector
	status *status.Reader
	o      Options
	log    *zap.Logger
	closed atomic.Bool
	wake   *waker
	gate   sealGate
	clock  *fleetclock.Clock
	sums   lead.IDKey // keys each task's digest; zero: plain
}

// clockReadTimeout bounds a measurement of Redis's clock.
const clockReadTimeout = 2 * time.Second

// now is the fleet's time (package fleetclock): Redis's, measured on the
// first publish and every fleetclock.SyncEvery after.
func (p *Publisher) now(ctx context.Context) time.Time {
	return p.clock.Read(ctx, p.store, p.log, clockReadTimeout)
}

// New returns a Publisher on rc. rc stays the caller's: Close does not close
// it. A nil log discards logs.
func New(rc redis.UniversalClient, o Options, log *zap.Logger) *Publisher {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	sums := o.IDKey // the zero key: plain digests (see Options.IDKey)
	if !o.IDKey.Valid() {
		o.IDKey, _ = lead.GenerateIDKey() // crypto/rand does not fail
	}
	store := rdb.New(rc)
	return &Publisher{
		sums:   sums,
		rdb:    rc,
		store:  store,
		client: asynq.NewClientFromRedisClient(rc),
		insp:   asynq.NewInspectorFromRedisClient(rc),
		status: status.New(rc, o.Queue),
		o:      o,
		log:    log,
		wake:   &waker{store: store, queue: o.Queue, log: log},
		clock:  fleetclock.New(o.Clock),
	}
}

// Status is where lead id is as site sees it: the status package's one
// answer (status.Reader.ForSite), with its errors: status.ErrNotFound for
// an id that is unknown, expired or another site's (indistinguishable on
// purpose), and, when Redis cannot answer, one wrapping both
// status.ErrUnavailable and ErrUnavailable.
func (p *Publisher) Status(ctx context.Context, site, id string) (status.Status, error) {
	st, err := p.status.ForSite(ctx, site, id)
	if errors.Is(err, status.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return st, err
}

// keyless names a lead sent without an idempotency key: by its content
// keyed with IDKey, for the window (rdb.Store.AdmitKeyless).
type keyless struct {
	now    time.Time
	digest lead.Digest
	name   string // the content's name, lead.IDKey.Keyless
	fresh  string // the identity a first submission opens the window under
}

// identity is the idempotency key a lead goes under: the site's own
// (refused in the relay's namespace, ErrReservedKey), or, for a keyless
// lead, the fresh identity it gets unless it repeats one within the
// window (kl, which admitKeyless settles with its admission).
func (p *Publisher) identity(ctx context.Context, site string, l lead.Lead, key string) (string, *keyless, error) {
	if lead.ReservedKey(key) {
		return "", nil, notStored{fmt.Errorf("%w: %q", ErrReservedKey, key)}
	}
	if key != "" {
		return key, nil, nil
	}
	kl := &keyless{now: p.now(ctx), digest: l.Digest()}
	kl.name = p.o.IDKey.Keyless(site, kl.digest)
	kl.fresh = kl.name + "@" + strconv.FormatInt(kl.now.UnixMilli(), 10)
	return kl.fresh, kl, nil
}

// legacyKeyless is, during an upgrade, the identity an intake of a
// version before keyed ids gave the same content (lead.LegacyKeylessPrefix
// and its plain digest), and whether what Redis holds of that lead says it
// was received or delivered within the keyless window: a double submit
// that reaches an old intake and then a new one is one lead. The other
// way round (new, then old) it is two leads: to be found by an old intake,
// a new one would have to name the lead by its plain digest, which is the
// membership oracle of issue 18 (finding 2). "" when the digest's version
// never had that form.
func (p *Publisher) legacyKeyless(kl *keyless) (string, func([]byte, *rdb.Marker) bool) {
	legacy := kl.digest.Key()
	if !strings.HasPrefix(legacy, lead.LegacyKeylessPrefix) {
		return "", nil
	}
	since := kl.now.Add(-p.o.KeylessWindow)
	return legacy, func(payload []byte, m *rdb.Marker) bool {
		if m != nil && m.At.After(since) {
			return true
		}
		env, err := lead.ReadEnvelope(payload)
		return payload != nil && err == nil && env.ReceivedAt.After(since)
	}
}

// Publish normalizes and validates l and enqueues it for site. An empty
// idempotencyKey is replaced by a keyed hash of the lead's content for
// KeylessWindow (rdb.Store.Keyless), so a form posted twice within it is
// one lead, and the same text weeks later a new one. A key in the relay's
// own namespace (lead.ReservedKey) is refused with ErrReservedKey.
//
// It returns a *lead.ValidationError for a bad lead, an error wrapping
// ErrUnavailable when Redis did not take it (or, with WaitReplicas, when too
// few replicas confirmed it: the task may exist then, and a retry is a
// harmless duplicate), and otherwise a Receipt. A nil error means Redis holds
// the lead; NothingStored tells the errors after which it holds nothing.
func (p *Publisher) Publish(ctx context.Context, site string, l lead.Lead, idempotencyKey string) (Receipt, error) {
	if p.o.Tracer == nil {
		return p.publish(ctx, site, l, idempotencyKey)
	}
	ctx, span := p.o.Tracer.Start(ctx, tracing.SpanPublish, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(tracing.Site.String(site)))
	defer span.End()
	rc, err := p.publish(ctx, site, l, idempotencyKey)
	traced(span, rc, err)
	return rc, err
}

// publish is Publish, traced or not.
func (p *Publisher) publish(ctx context.Context, site string, l lead.Lead, idempotencyKey string) (Receipt, error) {
	pl, task, kl, err := p.prepare(ctx, site, &l, idempotencyKey)
	if err != nil {
		return Receipt{}, err
	}
	a, ad, err := p.admission(ctx, &pl, &task, l, kl)
	// WithLazy: most leads write no line here, and With encoded the
	// fields for every one of them (3% of a publish's CPU in the bench).
	log := p.log.WithLazy(zap.String("lead_id", pl.ID), zap.String("site", site))
	if err != nil {
		log.Warn("admission failed", zap.Error(err))
		// The admission counts a place in the backlog, never the lead.
		return Receipt{}, notStored{fmt.Errorf("%w: admit lead %s: %w", ErrUnavailable, pl.ID, err)}
	}
	if done, rc, err := p.admitted(log, pl, ad, a, idempotencyKey); done {
		return rc, err
	}
	_, err = p.client.EnqueueContext(ctx, task, lead.TaskOptions(p.o.Queue, p.o.MaxRetry, p.o.DedupTTL)...)
	dup := errors.Is(err, asynq.ErrTaskIDConflict)
	if err != nil {
		// Not enqueued by this call: the lead's place in the backlog goes
		// back (a known task was counted when it was enqueued).
		if uerr := p.store.Unreserve(ctx, p.o.Queue, site); uerr != nil {
			log.Warn("backlog place not given back", zap.Error(uerr))
		}
		if uerr := p.store.Refund(ctx, a); uerr != nil {
			log.Warn("site's share not given back", zap.Error(uerr))
		}
	}
	if err != nil && !dup {
		log.Warn("enqueue failed", zap.Error(err))
		return Receipt{}, fmt.Errorf("%w: enqueue lead %s: %w", ErrUnavailable, pl.ID, err)
	}
	if dup {
		// The task is there (queued, retrying, retained or archived): a
		// repeat, unless its content differs.
		same, err := p.sameTask(ctx, pl)
		if err != nil {
			log.Warn("known lead not read", zap.Error(err))
			return Receipt{}, fmt.Errorf("%w: read lead %s: %w", ErrUnavailable, pl.ID, err)
		}
		if !same {
			return p.keyReused(log, pl, idempotencyKey)
		}
	}
	if !dup {
		p.wake.poke() // idle workers take it now, not at their next look
	}
	if err := p.confirm(ctx, pl.ID); err != nil {
		log.Warn("lead enqueued but not confirmed", zap.Error(err))
		return Receipt{}, fmt.Errorf("lead %s: %w", pl.ID, err)
	}
	// One line per lead at info is the caller's (intake's request line
	// names the lead and its outcome); this one is for tracing.
	log.Debug("lead published", zap.Bool("duplicate", dup))
	if ce := log.Check(zap.DebugLevel, "lead content"); ce != nil {
		ce.Write(zap.Any("lead", l), zap.String("idempotency_key", pl.IdempotencyKey))
	}
	return Receipt{ID: pl.ID, Duplicate: dup}, nil
}

// admission holds the lead of pl and task to the backlog caps and its
// site's share of Redis's memory (rdb.Store.Admit). A keyless lead (kl)
// gets its identity in the same step (rdb.Store.AdmitKeyless): a repeat
// within the window is the lead it repeats, so pl and task are built
// again under that identity before it is admitted. The args are for a
// refund.
func (p *Publisher) admission(ctx context.Context, pl *lead.Payload, task **asynq.Task, l lead.Lead, kl *keyless) (rdb.AdmitArgs, rdb.Admitted, error) {
	a := p.admitArgs(ctx, *pl, *task)
	if kl == nil {
		ad, err := p.store.Admit(ctx, a)
		return a, ad, err
	}
	k := rdb.KeylessArgs{Site: pl.Site, Name: kl.name, Fresh: kl.fresh, Window: p.o.KeylessWindow}
	if legacy, recent := p.legacyKeyless(kl); legacy != "" {
		k.LegacyID, k.Legacy, k.Recent = lead.ID(pl.Site, legacy), legacy, recent
	}
	res, err := p.store.AdmitKeyless(ctx, k, a)
	if err != nil {
		return a, rdb.Admitted{}, fmt.Errorf("keyless identity: %w", err)
	}
	if res.Repeats > 0 {
		p.log.Info("keyless repeat within its window: the same lead, counted",
			zap.String("lead_id", lead.ID(pl.Site, res.Identity)), zap.String("site", pl.Site), zap.Int("repeats", res.Repeats))
		if err := p.store.CountKeylessRepeat(ctx, pl.Site, lead.ID(pl.Site, res.Identity), kl.now, p.o.DedupTTL); err != nil {
			p.log.Debug("keyless repeat not counted for the day", zap.Error(err))
		}
	}
	if res.Admitted != nil {
		return a, *res.Admitted, nil
	}
	if res.Identity != pl.IdempotencyKey {
		if *pl, *task, err = p.build(ctx, pl.Site, l, res.Identity); err != nil {
			return a, rdb.Admitted{}, err
		}
		a = p.admitArgs(ctx, *pl, *task)
	}
	ad, err := p.store.Admit(ctx, a)
	return a, ad, err
}

// admitArgs are the admission's inputs for the lead of pl and task.
func (p *Publisher) admitArgs(ctx context.Context, pl lead.Payload, task *asynq.Task) rdb.AdmitArgs {
	a := rdb.AdmitArgs{Queue: p.o.Queue, ID: pl.ID, Site: pl.Site, SiteMax: p.o.SiteMax, TotalMax: p.o.TotalMax,
		Bytes: int64(len(task.Payload())) + rdb.KeptOverhead, Now: p.now(ctx), Keep: p.o.DedupTTL}
	if p.o.SiteShare != nil {
		a.ShareMax = p.o.SiteShare(ctx)
	}
	return a
}

// admitted reads the admission ad of the lead of pl: done says the lead
// goes no further, with its receipt or error: it was delivered already,
// or it does not fit.
func (p *Publisher) admitted(log *zap.Logger, pl lead.Payload, ad rdb.Admitted, a rdb.AdmitArgs, key string) (done bool, rc Receipt, err error) {
	switch ad.Admission {
	case rdb.Delivered:
		if !lead.SameContent(ad.Marker.Sum, pl.Sum, &pl.Lead) {
			rc, err = p.keyReused(log, pl, key)
			return true, rc, err
		}
		log.Debug("lead published", zap.Bool("duplicate", true))
		return true, Receipt{ID: pl.ID, Duplicate: true}, nil
	case rdb.SiteFull:
		return true, Receipt{}, &BacklogFullError{Site: pl.Site, Pending: ad.SiteN, Cap: p.o.SiteMax}
	case rdb.TotalFull:
		return true, Receipt{}, &BacklogFullError{Site: pl.Site, Global: true, Pending: ad.Total, Cap: p.o.TotalMax}
	case rdb.ShareFull:
		return true, Receipt{}, &BacklogFullError{Site: pl.Site, Bytes: true, Pending: ad.Kept, Cap: a.ShareMax}
	}
	return false, Receipt{}, nil
}

// prepare normalizes and validates l, names it (identity; kl for a
// keyless lead, whose identity admission settles) and builds its task.
func (p *Publisher) prepare(ctx context.Context, site string, l *lead.Lead, idempotencyKey string) (lead.Payload, *asynq.Task, *keyless, error) {
	if p.closed.Load() {
		return lead.Payload{}, nil, nil, notStored{fmt.Errorf("%w: publisher closed", ErrUnavailable)}
	}
	if site == "" {
		return lead.Payload{}, nil, nil, notStored{errors.New("producer: publish needs a site")}
	}
	l.Normalize()
	if err := l.Validate(); err != nil {
		return lead.Payload{}, nil, nil, err
	}
	key, kl, err := p.identity(ctx, site, *l, idempotencyKey)
	if err != nil {
		return lead.Payload{}, nil, nil, err
	}
	pl, task, err := p.build(ctx, site, *l, key)
	return pl, task, kl, err
}

// build encodes lead l of site under key as its task, which carries the
// publish's traceparent when tracing.
func (p *Publisher) build(ctx context.Context, site string, l lead.Lead, key string) (lead.Payload, *asynq.Task, error) {
	pl := lead.NewPayload(site, key, l, p.now(ctx))
	pl.Sum = string(p.sums.Digest(l)) // keyed: Redis keeps it in clear
	if p.o.Tracer != nil {
		pl.Trace = tracing.Traceparent(ctx)
	}
	task, err := p.codec(ctx).NewTask(pl)
	if err != nil {
		return lead.Payload{}, nil, notStored{fmt.Errorf("producer: %w", err)}
	}
	return pl, task, nil
}

// keyReused refuses a lead whose idempotency key names another lead.
func (p *Publisher) keyReused(log *zap.Logger, pl lead.Payload, key string) (Receipt, error) {
	log.Info("idempotency key reused with a different lead: refused")
	return Receipt{ID: pl.ID}, fmt.Errorf("%w: key %q already names another lead of site %s", ErrKeyReused, key, pl.Site)
}

// sameTask reports whether the task asynq holds under pl's id carries the
// same content. A task that vanished since the enqueue found it (it
// expired, or was delivered and deleted) counts as the same: its marker
// is checked by the worker of any later enqueue.
func (p *Publisher) sameTask(ctx context.Context, pl lead.Payload) (bool, error) {
	info, err := p.insp.GetTaskInfo(p.o.Queue, pl.ID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	old, err := lead.ReadEnvelope(info.Payload)
	if err != nil {
		return false, fmt.Errorf("stored task: %w", err)
	}
	return lead.SameContent(old.Sum, pl.Sum, &pl.Lead), nil
}

// confirm, with WaitReplicas, waits until that many replicas hold the
// lead: its admission and task (rdb.Store.SyncTask, which also makes sure
// the task is on the primary the wait reached, so a failover between the
// enqueue and here is not taken for a confirmation).
func (p *Publisher) confirm(ctx context.Context, id string) error {
	if p.o.WaitReplicas <= 0 {
		return nil
	}
	if err := p.store.SyncTask(ctx, p.o.Queue, id, p.o.WaitReplicas, p.o.WaitTimeout); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Ping reports whether Redis answers, as an error wrapping ErrUnavailable.
func (p *Publisher) Ping(ctx context.Context) error {
	if err := p.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close makes later Publish calls fail with ErrUnavailable, so a shutting
// down server answers 503 rather than acknowledging a lead. It does not close
// the Redis client, which the caller owns. Safe to call more than once.
func (p *Publisher) Close() error {
	p.closed.Store(true)
	return nil
}
