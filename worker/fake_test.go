package worker

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"leadrelay/crm"
	"leadrelay/crm/crmtest"
	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/crmsim/crmsimtest"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/internal/testclock"
	"leadrelay/lead"
)

// newFakeCRM is a CRM in memory speaking v as the shipped versions do (v1
// lists only its newest page, whatever the offset); its ids start at 101,
// so an id is never mistaken for a count.
func newFakeCRM(v crmclient.APIVersion) *crmtest.CRM {
	c := crmtest.New(v)
	c.FirstID = 100
	c.IgnorePaging = v == crmclient.V1
	return c
}

// forEachVersion runs test in a parallel subtest for each CRM API version
// LeadRelay speaks.
func forEachVersion(t *testing.T, test func(t *testing.T, v crmclient.APIVersion)) {
	t.Helper()
	for _, v := range []crmclient.APIVersion{crmclient.V1, crmclient.V2} {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			test(t, v)
		})
	}
}

// newTestClock is a test clock at the worker tests' start, noon of
// 2026-03-01, read in the local zone as time.Now reads.
func newTestClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Local())
}

// env is a handler on a private real Redis with a fake CRM.
type env struct {
	t     testing.TB
	rdb   *redis.Client
	crm   *crmtest.CRM
	h     *Handler
	clock *testclock.Clock
	o     Options
}

func newEnv(t testing.TB, v crmclient.APIVersion, tune func(*Options)) *env {
	t.Helper()
	return newEnvOn(t, redistest.Start(t), v, tune)
}

// newEnvOn is newEnv on a given redis-server.
func newEnvOn(t testing.TB, srv *redistest.Server, v crmclient.APIVersion, tune func(*Options)) *env {
	t.Helper()
	e := &env{t: t, rdb: srv.Client(), crm: newFakeCRM(v), clock: newTestClock()}
	e.o = Options{CRMTimeout: 2 * time.Second, Clock: e.clock.Now, BreakerThreshold: 1000}
	if tune != nil {
		tune(&e.o)
	}
	var log *zap.Logger
	if tb, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tb, zaptest.Level(zap.WarnLevel))
	}
	e.h = newHandler(t, e.crm, e.rdb, e.o, log)
	return e
}

// newHandler is NewHandler for a client of a version LeadRelay knows.
func newHandler(t testing.TB, c crm.Client, rc redis.UniversalClient, o Options, log *zap.Logger) *Handler {
	t.Helper()
	h, err := NewHandler(c, rc, o, log)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var leadSeq atomic.Int64

// task builds a lead task with a unique company marker.
func newLeadTask(t testing.TB) (*asynq.Task, lead.Payload) {
	t.Helper()
	n := leadSeq.Add(1)
	l := lead.Lead{Title: "Ann", Email: "ann@example.com", Company: fmt.Sprintf("co-%d", n), Description: "call me"}
	p := lead.NewPayload("shop", fmt.Sprintf("key-%d-%d", n, time.Now().UnixNano()), l, time.Now())
	task, err := lead.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	return task, p
}

func (e *env) marker(id string) *rdb.Marker {
	e.t.Helper()
	_, m, err := rdb.New(e.rdb).Lead(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// attempt reads a lead's attempt record.
func (e *env) attempt(id string) map[string]string {
	e.t.Helper()
	m, err := e.rdb.HGetAll(e.t.Context(), rdb.AttemptKey(id)).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// fleetRun is a load run: workers (real asynq servers) on a private real
// Redis, against a fake CRM of a version that fails a share of adds
// transiently (not stored) and a share ambiguously (stored, then the
// connection lost), drawn from a fixed seed. runWorkers runs the
// workers.
type fleetRun struct {
	version              crmclient.APIVersion
	workers, concurrency int
	transient, ambiguous float64
}

// fleet is a running fleetRun; its workers stop at the test's cleanup.
type fleet struct {
	rdb      *redis.Client
	crm      *crmtest.CRM
	handlers []*Handler
}

// startFleet starts r's workers and its CRM.
func startFleet(t *testing.T, r fleetRun) *fleet {
	t.Helper()
	f := &fleet{rdb: redistest.Start(t).Client(), crm: newFakeCRM(r.version), handlers: make([]*Handler, r.workers)}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	f.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		mu.Lock()
		x := rng.Float64()
		mu.Unlock()
		switch {
		case x < r.transient:
			return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
		case x < r.transient+r.ambiguous:
			return true, &crmclient.TransportError{Action: "add", Sent: true, Err: io.ErrUnexpectedEOF}
		}
		return true, nil
	})
	o := Options{
		Concurrency: r.concurrency, RetryInitial: 10 * time.Millisecond, RetryMaxDelay: 50 * time.Millisecond,
		CRMTimeout: 100 * time.Millisecond, BreakerThreshold: 1000, ShutdownTimeout: 5 * time.Second,
		PollInterval: 50 * time.Millisecond,
	}
	for i, w := range runWorkers(t, f.crm, f.rdb, o, r.workers) {
		f.handlers[i] = w.h
	}
	return f
}

// runWorkers runs k worker processes' worth of Handler and Worker of c on
// rc with o until the test ends, and returns the Workers. They log errors
// only, each under its own name (a, b, …): the fleets here fail adds on
// purpose, and a warning for every retry would bury a failure's cause. A
// Run that fails fails t.
func runWorkers(t *testing.T, c crm.Client, rc redis.UniversalClient, o Options, k int) []*Worker {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	var wg sync.WaitGroup
	workers := make([]*Worker, k)
	for i := range workers {
		wlog := log.Named(string(rune('a' + i)))
		w := New(rc, newHandler(t, c, rc, o, wlog), o, wlog)
		workers[i] = w
		wg.Go(func() {
			if err := w.Run(t.Context()); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	// t.Context is cancelled before the cleanups run: this one waits for
	// the workers to stop.
	t.Cleanup(wg.Wait)
	return workers
}

// serveAsynq runs a bare asynq server of h on rc, as a Worker's would
// be but with no Worker around it: cfg with the default queue, no logs
// and, unless cfg says, a 1s ShutdownTimeout. It shuts down at the
// test's cleanup, if not before.
func serveAsynq(t *testing.T, rc redis.UniversalClient, h asynq.Handler, cfg asynq.Config) *asynq.Server {
	t.Helper()
	cfg.Queues = map[string]int{lead.DefaultQueue: 1}
	cfg.Logger, cfg.LogLevel = zap.NewNop().Sugar(), asynq.FatalLevel
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = time.Second
	}
	srv := asynq.NewServerFromRedisClient(rc, cfg)
	if err := srv.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// startSim serves a simulator of cfg (cfg.API its version) until the test
// ends, and returns it with a client of it that gives up after 5s.
func startSim(t *testing.T, cfg crmsim.Config) (*crmsim.Sim, *crmclient.Client) {
	t.Helper()
	sim, url := crmsimtest.Start(t, cfg)
	client, err := crmclient.New(url, "admin@example.com", cfg.APIKey,
		crmclient.WithAPIVersion(crmclient.APIVersion(cfg.API)), crmclient.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return sim, client
}

// waitDelivered waits until every lead of ps is recorded as delivered,
// failing t after 30s with how many were.
func waitDelivered(t *testing.T, rc redis.UniversalClient, ps []lead.Payload) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := 0
		for _, p := range ps {
			n += int(rc.Exists(t.Context(), rdb.DeliveredKey(p.ID)).Val())
		}
		if n == len(ps) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d leads delivered after 30s", n, len(ps))
		}
	}
}

// enqueue publishes n leads as the producer does and returns them.
func (f *fleet) enqueue(t *testing.T, n int) []lead.Payload {
	t.Helper()
	return enqueueLeads(t, f.rdb, n, 100, time.Hour)
}

// enqueueLeads publishes n new leads to rc as the producer does, with the
// retry budget and retention given, and returns them.
func enqueueLeads(t *testing.T, rc *redis.Client, n, maxRetry int, retention time.Duration) []lead.Payload {
	t.Helper()
	client := asynq.NewClientFromRedisClient(rc)
	ps := make([]lead.Payload, n)
	for i := range ps {
		task, p := newLeadTask(t)
		ps[i] = p
		if _, err := client.Enqueue(task, lead.TaskOptions(lead.DefaultQueue, maxRetry, retention)...); err != nil {
			t.Fatal(err)
		}
	}
	return ps
}

// stats sums the handlers' counters.
func (f *fleet) stats() Stats {
	var s Stats
	for _, h := range f.handlers {
		x := h.Stats()
		s.Delivered += x.Delivered
		s.ReconcileFound += x.ReconcileFound
		s.ReconcileNotFound += x.ReconcileNotFound
		s.ReconcileUnknown += x.ReconcileUnknown
		s.ReconcileJournal += x.ReconcileJournal
	}
	return s
}
