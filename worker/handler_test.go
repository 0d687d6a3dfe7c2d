package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	v2 "leadrelay/crm/v2"
	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

func TestHandlerDelivers(t *testing.T) {
	t.Parallel()
	forEachVersion(t, func(t *testing.T, v crmclient.APIVersion) {
		e := newEnv(t, v, nil)
		task, p := newLeadTask(t)
		ctx := t.Context()
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("ProcessTask = %v", err)
		}
		m := e.marker(p.ID)
		if m == nil || m.CRMID != 101 || m.LeadID != p.ID || !m.At.Equal(e.clock.Now()) {
			t.Fatalf("marker = %+v", m)
		}
		ttl := e.rdb.PTTL(ctx, rdb.DeliveredKey(p.ID)).Val()
		if ttl < 29*24*time.Hour {
			t.Errorf("marker TTL = %v, want about 30 days", ttl)
		}
		if n := e.rdb.Exists(ctx, rdb.LockKey(p.ID), rdb.AttemptKey(p.ID)).Val(); n != 0 {
			t.Errorf("lock/attempt keys left behind: %d", n)
		}
		uids := e.crm.Leads()[0].UIDs
		if v == crmclient.V2 && uids[v2.UIDKey] != p.ID {
			t.Errorf("v2 uids = %v, want %s=%s", uids, v2.UIDKey, p.ID)
		}
		if holder := e.rdb.HGet(ctx, rdb.ClaimsKey(101), "101").Val(); holder != p.ID {
			t.Errorf("CRM id 101 claimed by %q, want %s", holder, p.ID)
		}
		// A re-run after success (crash before ack, lease expiry,
		// manual re-run) must not post twice.
		for range 3 {
			if err := e.h.ProcessTask(ctx, task); err != nil {
				t.Fatalf("re-run = %v", err)
			}
		}
		if adds, _ := e.crm.Counts(); adds != 1 {
			t.Errorf("adds = %d, want 1", adds)
		}
		if s := e.h.Stats(); s.Delivered != 1 || s.Duplicates != 3 {
			t.Errorf("stats = %+v", s)
		}
		if n, _ := rdb.New(e.rdb).DeliveredOn(ctx, e.clock.Now()); n != 1 {
			t.Errorf("delivered today = %d, want 1 (re-runs do not count)", n)
		}
	})
}

func TestHandlerMarkerSkipsCRM(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, nil)
	task, p := newLeadTask(t)
	e.rdb.Set(ctx, rdb.DeliveredKey(p.ID), `{"crm_id":7,"at":"2026-01-01T00:00:00Z","lead_id":"`+p.ID+`"}`, time.Hour)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if adds, _ := e.crm.Counts(); adds != 0 {
		t.Errorf("adds = %d, want 0", adds)
	}
}

func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V1, nil)
	tests := []struct {
		name    string
		err     error
		stored  bool
		skip    bool // wraps asynq.SkipRetry
		failure bool // IsFailure
		state   string
		code    delivery.Code
	}{
		{"permanent", &crmclient.APIError{Action: "add", Code: 1, Text: "Ошибка добавления лида"}, false, true, true, rdb.StateFailed, delivery.CRMRejected},
		{"transient", &crmclient.StatusError{Action: "add", StatusCode: 503}, false, false, true, rdb.StateFailed, delivery.CRMUnreachable},
		{"rate limited", &crmclient.StatusError{Action: "add", StatusCode: 429, RetryAfter: time.Minute}, false, false, false, rdb.StateFailed, delivery.CRMRateLimited},
		{"ambiguous", &crmclient.TransportError{Action: "add", Sent: true, Err: io.ErrUnexpectedEOF}, true, false, true, rdb.StateUncertain, delivery.CRMTimeout},
		// Last: a configuration problem opens the circuit for everyone.
		{"config", &crmclient.APIError{Action: "add", Code: 400, Text: "Не верный API key"}, false, false, false, rdb.StateFailed, delivery.ConfigAPIKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: the cases share one fake CRM.
			task, p := newLeadTask(t)
			e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return tc.stored, tc.err })
			err := e.h.ProcessTask(ctx, task)
			if err == nil {
				t.Fatal("ProcessTask = nil")
			}
			if got := errors.Is(err, asynq.SkipRetry); got != tc.skip {
				t.Errorf("SkipRetry = %v, want %v (%v)", got, tc.skip, err)
			}
			if got := IsFailure(err); got != tc.failure {
				t.Errorf("IsFailure = %v, want %v (%v)", got, tc.failure, err)
			}
			if got := judge(err).reason.Code; got != tc.code {
				t.Errorf("reason %s, want %s (%v)", got, tc.code, err)
			}
			if got := delivery.ParseReason(e.attempt(p.ID)["reason"]); got.Code != tc.code {
				t.Errorf("recorded reason %+v, want %s", got, tc.code)
			}
			if st := e.attempt(p.ID)["state"]; st != tc.state {
				t.Errorf("attempt state = %q, want %q", st, tc.state)
			}
			if e.marker(p.ID) != nil {
				t.Error("marker written after a failure")
			}
			if e.rdb.Exists(ctx, rdb.LockKey(p.ID)).Val() != 0 {
				t.Error("lock not released")
			}
		})
	}
	if e.h.ConfigProblem(ctx).IsZero() || e.h.Ready(ctx) == nil {
		t.Error("ConfigProblem()/Ready() silent after a config failure")
	}
	// The probe after the cooldown succeeds and clears the problem.
	e.clock.Advance(e.h.o.BreakerCooldown)
	e.crm.SetFail(nil)
	task, _ := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * healthCacheFor)
	if !e.h.ConfigProblem(ctx).IsZero() || e.h.Ready(ctx) != nil {
		t.Error("ConfigProblem()/Ready() not cleared by a success")
	}
}

// TestNewHandlerRefusesUnknownVersion: a CRM client of an API version
// LeadRelay has no look-up for is refused at start, never run as v1.
func TestNewHandlerRefusesUnknownVersion(t *testing.T) {
	t.Parallel()
	h, err := NewHandler(newFakeCRM("v3"), nil, Options{}, nil)
	if err == nil || h != nil || !strings.Contains(err.Error(), `"v3"`) {
		t.Fatalf("NewHandler(v3) = %v, %v; want refused", h, err)
	}
}

func TestHandlerBrokenPayload(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newHandler(t, newFakeCRM(crmclient.V1), nil, Options{}, nil)
	err := h.ProcessTask(ctx, asynq.NewTask(lead.TaskType, []byte(`{"id":`)))
	if !errors.Is(err, asynq.SkipRetry) || judge(err).reason.Code != delivery.PayloadBroken {
		t.Fatalf("ProcessTask = %v, want SkipRetry with reason", err)
	}
}

// TestHandlerSingleFlight runs one lead on many goroutines at once against a
// slow CRM: one add, the rest postponed or skipped.
func TestHandlerSingleFlight(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, func(o *Options) { o.LockTTL = 300 * time.Millisecond })
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		time.Sleep(500 * time.Millisecond) // outlasts LockTTL: renewal must hold it
		return true, nil
	})
	task, p := newLeadTask(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			if i > 0 {
				time.Sleep(time.Duration(i) * 80 * time.Millisecond)
			}
			errs[i] = e.h.ProcessTask(ctx, task)
		})
	}
	wg.Wait()
	for i, err := range errs {
		var de *DelayError
		if err != nil && !errors.As(err, &de) {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if adds, _ := e.crm.Counts(); adds != 1 {
		t.Errorf("adds = %d, want 1", adds)
	}
	if e.marker(p.ID) == nil {
		t.Error("no marker")
	}
}

func TestHandlerLockBusy(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, nil)
	task, p := newLeadTask(t)
	e.rdb.Set(ctx, rdb.LockKey(p.ID), "someone-else", 10*time.Second)
	err := e.h.ProcessTask(ctx, task)
	var de *DelayError
	if !errors.As(err, &de) || IsFailure(err) || de.Delay <= 0 || de.Delay > 10*time.Second {
		t.Fatalf("ProcessTask = %v, want a DelayError of at most 10s", err)
	}
	if adds, _ := e.crm.Counts(); adds != 0 {
		t.Errorf("adds = %d", adds)
	}
	if e.rdb.Get(ctx, rdb.LockKey(p.ID)).Val() != "someone-else" {
		t.Error("someone else's lock was touched")
	}
}

// TestHandlerUnrecordedMarkerReconciles: the CRM stored the lead but the
// marker cannot be written (Redis refuses). The attempt stays "sending", so
// the next run reconciles instead of adding again; and when the marker of
// that reconcile cannot be written either, the run after it finds the lead
// again (on v1 its own claim on the CRM id must not hide it).
func TestHandlerUnrecordedMarkerReconciles(t *testing.T) {
	t.Parallel()
	forEachVersion(t, func(t *testing.T, v crmclient.APIVersion) {
		e := newEnv(t, v, nil)
		var broken atomic.Bool
		e.rdb.AddHook(failFinish{&broken})
		task, p := newLeadTask(t)
		ctx := t.Context()
		broken.Store(true)
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if !errors.As(err, &de) || IsFailure(err) || !strings.Contains(err.Error(), "marker could not be recorded") {
			t.Fatalf("first run = %v, want a postponed, unrecorded delivery", err)
		}
		if st := e.attempt(p.ID)["state"]; st != rdb.StateSending {
			t.Fatalf("attempt state = %q, want %q", st, rdb.StateSending)
		}
		// Let the lock left behind expire, as it would.
		e.rdb.Del(ctx, rdb.LockKey(p.ID))
		// Too early: the first request might still be in flight.
		err = e.h.ProcessTask(ctx, task)
		if !errors.As(err, &de) || IsFailure(err) {
			t.Fatalf("early run = %v, want a DelayError", err)
		}
		e.clock.Advance(e.o.CRMTimeout + reconcileSettle)
		// The reconcile finds the lead, but its marker is refused too.
		if err := e.h.ProcessTask(ctx, task); !errors.As(err, &de) || !strings.Contains(err.Error(), "marker could not be recorded") {
			t.Fatalf("unrecorded reconcile run = %v, want an unrecorded delivery", err)
		}
		broken.Store(false)
		e.rdb.Del(ctx, rdb.LockKey(p.ID))
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("reconcile run = %v", err)
		}
		m := e.marker(p.ID)
		if m == nil || m.Via != "reconcile" || m.CRMID != 101 {
			t.Fatalf("marker = %+v, want the reconciled CRM id 101", m)
		}
		if adds, stored := e.crm.Counts(); adds != 1 || stored != 1 {
			t.Errorf("adds = %d stored = %d, want 1 and 1", adds, stored)
		}
		if s := e.h.Stats(); s.ReconcileFound != 2 {
			t.Errorf("stats = %+v, want 2 found", s)
		}
	})
}

// failFinish makes Redis refuse the delivery-recording command (the one
// that counts the day's deliveries: a pipeline on a Cluster, one script
// on a single primary) while on is set.
type failFinish struct{ on *atomic.Bool }

func (f failFinish) refuse(cmds []redis.Cmder) error {
	if !f.on.Load() {
		return nil
	}
	for _, c := range cmds {
		for _, a := range c.Args() {
			if k, ok := a.(string); ok && strings.Contains(k, "stats:delivered:") {
				err := errors.New("injected: redis refuses the marker")
				for _, c := range cmds {
					c.SetErr(err)
				}
				return err
			}
		}
	}
	return nil
}

func (failFinish) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f failFinish) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		if err := f.refuse([]redis.Cmder{c}); err != nil {
			return err
		}
		return next(ctx, c)
	}
}
func (f failFinish) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := f.refuse(cmds); err != nil {
			return err
		}
		return next(ctx, cmds)
	}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ambiguous := &crmclient.TransportError{Action: "add", Sent: true, Err: context.DeadlineExceeded}
	tests := []struct {
		name    string
		v       crmclient.APIVersion
		stored  bool // the ambiguous add stored the lead
		prep    func(e *env, p lead.Payload)
		policy  string
		want    string // found | resent | dead
		adds    int
		results func(s Stats) bool
	}{
		{name: "v2 found", v: crmclient.V2, stored: true, want: "found", adds: 1},
		{name: "v2 not stored", v: crmclient.V2, stored: false, want: "resent", adds: 2},
		{name: "v1 found", v: crmclient.V1, stored: true, want: "found", adds: 1},
		{name: "v1 not stored", v: crmclient.V1, stored: false, want: "resent", adds: 2},
		{name: "v1 identical lead claimed by another", v: crmclient.V1, stored: false, want: "resent", adds: 3,
			prep: func(e *env, p lead.Payload) {
				// A genuine identical lead, delivered normally: its CRM id
				// is claimed, so the reconcile must not take it.
				q := lead.NewPayload("shop", "twin-"+p.ID, p.Lead, time.Now())
				twin, _ := lead.NewTask(q)
				e.crm.SetFail(nil)
				if err := e.h.ProcessTask(ctx, twin); err != nil {
					e.t.Fatal(err)
				}
			}},
		{name: "v1 unknown resends", v: crmclient.V1, stored: false, policy: ReconcileResend, want: "resent", adds: 2 + crmclient.PageSize,
			prep: func(e *env, _ lead.Payload) { fillOthers(e, crmclient.PageSize) }},
		{name: "v1 unknown dead", v: crmclient.V1, stored: true, policy: ReconcileDead, want: "dead", adds: 1 + crmclient.PageSize,
			prep: func(e *env, _ lead.Payload) { fillOthers(e, crmclient.PageSize) }},
		{name: "v2 found beyond the first page", v: crmclient.V2, stored: true, want: "found", adds: 1 + 450,
			prep: func(e *env, _ lead.Payload) { fillOthers(e, 450) }},
		// Exactly a page of new leads arriving between two pages makes page
		// 1 start with page 0's first lead, as if the CRM ignored the
		// offset; the scan must not give up on a CRM that pages.
		{name: "v2 a page of new leads mid-scan", v: crmclient.V2, stored: true, want: "found", adds: 1 + 450,
			prep: func(e *env, _ lead.Payload) {
				fillOthers(e, 450)
				e.crm.BeforeList = func(o crmclient.ListOptions, lists int) []crmclient.Lead {
					var mid []crmclient.Lead
					if o.Page == 1 && lists == 2 {
						for i := range crmclient.PageSize {
							mid = append(mid, crmclient.Lead{Lead: lead.Lead{Title: "y", Company: fmt.Sprintf("mid-%d", i)}})
						}
					}
					return mid
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.v, func(o *Options) { o.ReconcileUnknown = tc.policy })
			task, p := newLeadTask(t)
			e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return tc.stored, ambiguous })
			if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
				t.Fatalf("first run = %v", err)
			}
			if tc.prep != nil {
				tc.prep(e, p)
			}
			e.crm.SetFail(nil)
			e.clock.Advance(e.o.CRMTimeout + reconcileSettle)
			err := e.h.ProcessTask(ctx, task)
			m := e.marker(p.ID)
			switch tc.want {
			case "found":
				if err != nil || m == nil || m.Via != "reconcile" {
					t.Fatalf("run = %v, marker %+v; want found by reconcile", err, m)
				}
			case "resent":
				if err != nil || m == nil || m.Via != "" {
					t.Fatalf("run = %v, marker %+v; want a fresh add", err, m)
				}
			case "dead":
				if !errors.Is(err, asynq.SkipRetry) || m != nil {
					t.Fatalf("run = %v, marker %+v; want dead", err, m)
				}
			}
			if adds, _ := e.crm.Counts(); adds != tc.adds {
				t.Errorf("adds = %d, want %d", adds, tc.adds)
			}
			if per := e.crm.PerCompany()[p.Lead.Company]; tc.want != "dead" && tc.name != "v1 identical lead claimed by another" && per != 1 {
				t.Errorf("CRM holds the lead %d times, want 1", per)
			}
		})
	}
}

// fillOthers stores n unrelated, newer leads in the fake CRM.
func fillOthers(e *env, n int) {
	ctx := e.t.Context()
	e.crm.SetFail(nil)
	for i := range n {
		if _, err := e.crm.Add(ctx, crmclient.Lead{Lead: lead.Lead{Title: "x", Company: fmt.Sprintf("other-%d", i)}}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestBreaker: the shared circuit opens at the threshold, postpones the
// whole fleet, probes once half-open, and closes when the CRM answers;
// operators are told (OnOutage) once when it opens and once when it
// closes, whichever worker sees it (issue 21: nothing said it closed).
func TestBreaker(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var (
		mu      sync.Mutex
		outages []string
	)
	e := newEnv(t, crmclient.V2, func(o *Options) {
		o.BreakerThreshold = 3
		o.BreakerCooldown = time.Minute
		o.OnOutage = func(open bool, r delivery.Reason) {
			mu.Lock()
			defer mu.Unlock()
			outages = append(outages, fmt.Sprint(open, " ", r.Code))
		}
	})
	down := &crmclient.StatusError{Action: "add", StatusCode: 503}
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return false, down })
	for i := range 3 {
		task, _ := newLeadTask(t)
		if err := e.h.ProcessTask(ctx, task); !IsFailure(err) {
			t.Fatalf("failure %d = %v, want a counted failure", i, err)
		}
	}
	// Open: no CRM call, no attempt spent, for the whole fleet (a second
	// handler on the same Redis sees it too).
	other := newHandler(t, e.crm, e.rdb, e.o, nil)
	for _, h := range []*Handler{e.h, other} {
		task, _ := newLeadTask(t)
		err := h.ProcessTask(ctx, task)
		var de *DelayError
		if !errors.As(err, &de) || IsFailure(err) || de.Delay != time.Minute {
			t.Fatalf("while open = %v, want DelayError of 1m", err)
		}
	}
	if adds, _ := e.crm.Counts(); adds != 3 {
		t.Fatalf("adds = %d, want 3 (none while open)", adds)
	}
	// Half-open: one probe; it fails and reopens the circuit.
	e.clock.Advance(time.Minute)
	task, _ := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); !IsFailure(err) {
		t.Fatalf("probe = %v, want a counted failure", err)
	}
	task, _ = newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); IsFailure(err) {
		t.Fatalf("after failed probe = %v, want postponed", err)
	}
	// Recovery: the next probe succeeds and closes the circuit.
	e.clock.Advance(time.Minute)
	e.crm.SetFail(nil)
	for range 3 {
		task, _ := newLeadTask(t)
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("after recovery = %v", err)
		}
	}
	if e.rdb.Exists(ctx, rdb.BreakerKey).Val() != 0 {
		t.Error("breaker state left after recovery")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"true crm_unreachable", "false "}; !slices.Equal(outages, want) {
		t.Errorf("operators were told %q, want %q: the outage's start and its end, once each", outages, want)
	}
}

// TestBreakerProbeExclusive: while a half-open probe is out, others wait.
func TestBreakerProbeExclusive(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, func(o *Options) { o.BreakerCooldown = time.Second; o.BreakerThreshold = 1 })
	s := e.h.store
	if st, err := s.CircuitFailed(ctx, e.h.circuitArgs()); err != nil || st != rdb.CircuitOpened {
		t.Fatal(err)
	}
	if c, _ := s.Circuit(ctx, e.clock.Now()); c.Wait <= 0 {
		t.Fatalf("open breaker allowed a call: %+v", c)
	}
	e.clock.Advance(time.Second)
	if c, _ := s.Circuit(ctx, e.clock.Now()); c.Wait != 0 || !c.ProbeDue {
		t.Fatalf("after the cooldown: %+v, want a probe due", c)
	}
	first, _ := s.ClaimProbe(ctx, e.clock.Now(), time.Minute)
	second, _ := s.ClaimProbe(ctx, e.clock.Now(), time.Minute)
	if c, _ := s.Circuit(ctx, e.clock.Now()); !first || second || c.Wait <= 0 {
		t.Fatalf("probes = %v, %v (circuit %+v); want exactly one probe", first, second, c)
	}
}

// TestBreakerProbeWait: while another run's half-open probe is out, a
// lead waits about as long as the probe has been out, not the probe's
// whole lease (the CRM timeout). The leads an open circuit postponed all
// come due with the probe: before, each waited LEADRELAY_CRM_TIMEOUT more
// though the probe had answered in milliseconds, and a drain after an
// outage stood still that long (issue 20).
func TestBreakerProbeWait(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, func(o *Options) {
		o.BreakerCooldown, o.BreakerThreshold, o.CRMTimeout = time.Second, 1, time.Minute
	})
	s := e.h.store
	if st, err := s.CircuitFailed(ctx, e.h.circuitArgs()); err != nil || st != rdb.CircuitOpened {
		t.Fatal(st, err)
	}
	e.clock.Advance(time.Second)
	if ok, err := s.ClaimProbe(ctx, e.clock.Now(), time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// The cases run in order on one clock: the probe stays out.
	for _, tc := range []struct {
		name     string
		advance  time.Duration
		min, max time.Duration
	}{
		{"a probe just out", 0, probeRecheck, 2 * probeRecheck},
		{"a probe out for 10 s", 10 * time.Second, 10 * time.Second, 10*time.Second + probeRecheck},
		{"a probe near the end of its lease", 49 * time.Second, time.Second, time.Second + probeRecheck},
	} {
		e.clock.Advance(tc.advance)
		task, _ := newLeadTask(t)
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if !errors.As(err, &de) || IsFailure(err) || de.Reason.Code != delivery.CircuitOpen {
			t.Fatalf("%s: %v, want postponed for the open circuit", tc.name, err)
		}
		if de.Delay < tc.min || de.Delay > tc.max {
			t.Errorf("%s: postponed %s, want %s..%s", tc.name, de.Delay, tc.min, tc.max)
		}
	}
	if adds, _ := e.crm.Counts(); adds != 0 {
		t.Errorf("%d adds while the probe was out, want none", adds)
	}
}

// refuse is a Limiter that always refuses.
type refuse struct{}

func (refuse) Acquire(context.Context) (func(), error) {
	return nil, &DelayError{Delay: 3 * time.Second, Reason: delivery.Reason{Code: delivery.RateLimit}}
}

// deadBox is a DeadLetters store in memory.
type deadBox struct {
	mu      sync.Mutex
	reasons map[string]delivery.Reason
}

func (d *deadBox) Put(_ context.Context, p lead.Payload, death Death) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reasons[p.ID] = death.Reason
	return nil
}

func (d *deadBox) reason(id string) (delivery.Reason, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.reasons[id]
	return r, ok
}

func (d *deadBox) Forget(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.reasons, id)
	return nil
}

func TestHandlerSeams(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t.Run("limiter refusal spends nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, crmclient.V2, func(o *Options) { o.Limiter = refuse{} })
		task, p := newLeadTask(t)
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if !errors.As(err, &de) || de.Delay != 3*time.Second || IsFailure(err) {
			t.Fatalf("ProcessTask = %v, want the limiter's DelayError", err)
		}
		if adds, _ := e.crm.Counts(); adds != 0 {
			t.Errorf("adds = %d", adds)
		}
		if e.rdb.Exists(ctx, rdb.AttemptKey(p.ID), rdb.LockKey(p.ID)).Val() != 0 {
			t.Error("a refused delivery left an attempt record or a lock")
		}
	})
	t.Run("dead letters are kept", func(t *testing.T) {
		t.Parallel()
		box := &deadBox{reasons: map[string]delivery.Reason{}}
		e, task, p := runRejected(t, box, "Ошибка добавления лида")
		box.mu.Lock()
		reason := box.reasons[p.ID]
		box.mu.Unlock()
		if want := (delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}); reason != want {
			t.Errorf("dead store = %v", reason)
		}
		// An operator fixes the cause and re-runs it: delivered, forgotten.
		e.crm.SetFail(nil)
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("re-run: %v", err)
		}
		box.mu.Lock()
		defer box.mu.Unlock()
		if _, ok := box.reasons[p.ID]; ok {
			t.Errorf("delivered lead still in the dead store: %v", box.reasons)
		}
	})
}

// runRejected runs a lead once in a v1 env whose dead letters go to box
// and whose CRM rejects every add (error 1, text): the run must end the
// lead. It returns the env, with the CRM still rejecting, and the lead.
func runRejected(t *testing.T, box DeadLetters, text string) (*env, *asynq.Task, lead.Payload) {
	ctx := t.Context()
	t.Helper()
	e := newEnv(t, crmclient.V1, func(o *Options) { o.DeadLetters = box })
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		return false, &crmclient.APIError{Action: "add", Code: 1, Text: text}
	})
	task, p := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask = %v, want SkipRetry", err)
	}
	return e, task, p
}

// failingBox is a deadBox whose first fails Puts fail, as during a Redis
// failover.
type failingBox struct {
	deadBox
	fails int
}

func (d *failingBox) Put(ctx context.Context, p lead.Payload, death Death) error {
	d.mu.Lock()
	if d.fails > 0 {
		d.fails--
		d.mu.Unlock()
		return errors.New("redis: connection refused")
	}
	d.mu.Unlock()
	return d.deadBox.Put(ctx, p, death)
}

// TestDeadPutRetried: a dead letter whose write fails once or twice (Redis
// failing over) is written on a later try, not left to the sweep; one
// that keeps failing still ends the lead (asynq archives it, the sweep
// records it).
func TestDeadPutRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fails int
		kept  bool
	}{
		{"no failure", 0, true},
		{"two failures", 2, true},
		{"every try fails", deadPutTries, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			box := &failingBox{deadBox: deadBox{reasons: map[string]delivery.Reason{}}, fails: tc.fails}
			_, _, p := runRejected(t, box, "rejected")
			if _, kept := box.reason(p.ID); kept != tc.kept {
				t.Errorf("dead letter kept: %v, want %v", kept, tc.kept)
			}
		})
	}
}

// Cases 1 to 7 below (TestEdge…) are the edges of the exactly-once
// promise that issue 8 lists, each as it was measured; every one failed
// before the delivery engine was made one explicit state machine.

var (
	lostConn = &crmclient.TransportError{Action: "add", Sent: true, Err: context.DeadlineExceeded}
	http500  = &crmclient.StatusError{Action: "add", StatusCode: 500}
)

// Case 1: the real v2 add stores the lead, then calls webhooks, then
// writes the uids stamp; a request killed in between leaves a stamp-less
// lead, which the look-up must still find (by content) instead of sending
// it again.
func TestEdgeV2StamplessAdd(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, nil)
	task, p := newLeadTask(t)
	e.crm.NoStamp = true
	e.crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) { return true, lostConn })
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	// A genuine lead of other content, stamped by another relay lead, and
	// an unstamped one of other content: neither may be taken.
	fillOthers(e, 3)
	e.crm.SetFail(nil)
	e.clock.Advance(e.h.o.ReconcileAfter)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("second run = %v", err)
	}
	if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 {
		t.Fatalf("CRM holds the lead %d times, want 1", n)
	}
	if m := e.marker(p.ID); m == nil || m.Via != "reconcile" || m.CRMID != 101 {
		t.Fatalf("marker = %+v, want CRM lead 101 found by reconcile", m)
	}
}

// Case 2: a v1 CRM whose list ignores every parameter (as shipped) shows
// only the newest 200. A lead whose add was uncertain has scrolled off by
// the time the look-up may run; the journal of the CRM's newest page,
// refreshed every journalRefreshEvery sends by whichever worker sees the
// count first, still holds it. The worker that sent it need not be the one
// that refreshed the journal, and the CRM may have been empty at its send.
func TestEdgeV1ListIgnoresParameters(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, existing := range []int{0, 1} {
		t.Run(fmt.Sprintf("%d leads before", existing), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, crmclient.V1, nil)
			fillOthers(e, existing)
			quiet := newHandler(t, e.crm, e.rdb, e.o, nil) // sends the lead, refreshes no more than at start
			sctx, stop := context.WithCancel(ctx)
			t.Cleanup(stop)
			quiet.Start(sctx)
			task, p := newLeadTask(t)
			e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return true, lostConn })
			if err := quiet.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
				t.Fatalf("first run = %v, want uncertain", err)
			}
			e.crm.SetFail(nil)
			// 300 more leads go through another worker meanwhile: the lead
			// scrolls off the CRM's newest 200.
			for range 300 {
				other, _ := newLeadTask(t)
				if err := e.h.ProcessTask(ctx, other); err != nil {
					t.Fatal(err)
				}
				waitJournal(t, e.h)
			}
			e.clock.Advance(e.h.o.ReconcileAfter)
			if err := quiet.ProcessTask(ctx, task); err != nil {
				t.Fatalf("look-up run = %v", err)
			}
			if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 {
				t.Fatalf("CRM holds the lead %d times, want 1 (stats %+v)", n, quiet.Stats())
			}
			if s := quiet.Stats(); s.ReconcileFound != 1 || s.ReconcileJournal != 1 {
				t.Errorf("stats = %+v, want one look-up answered from the journal", s)
			}
		})
	}
}

// waitJournal waits (bounded) for a background journal refresh to end.
func waitJournal(t *testing.T, h *Handler) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	j, ok := h.api.(interface{ Refreshing() bool })
	for ok && j.Refreshing() {
		if time.Now().After(deadline) {
			t.Fatal("journal refresh did not end within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Case 3: an idempotency key reused, after the lead's admission record
// expired, for a lead of other content: the worker must deliver it, not
// skip it as a duplicate of the first.
func TestEdgeMarkerOfOtherContent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, nil)
	first := lead.NewPayload("shop", "order-7", lead.Lead{Title: "Ann", Company: "first-co"}, time.Now())
	second := lead.NewPayload("shop", "order-7", lead.Lead{Title: "Bob", Company: "second-co"}, time.Now())
	if first.ID != second.ID || first.Sum == second.Sum {
		t.Fatal("test leads must share an id and differ in content")
	}
	for _, p := range []lead.Payload{first, second} {
		task, _ := lead.NewTask(p)
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if errors.As(err, &de) { // the stale marker was dropped: run again
			err = e.h.ProcessTask(ctx, task)
		}
		if err != nil {
			t.Fatalf("%s: %v", p.Lead.Company, err)
		}
	}
	per := e.crm.PerCompany()
	if per["first-co"] != 1 || per["second-co"] != 1 {
		t.Fatalf("CRM leads = %v, want each lead once", per)
	}
	if m := e.marker(second.ID); m == nil || !lead.SameContent(m.Sum, second.Sum, &second.Lead) || lead.SameContent(m.Sum, first.Sum, &first.Lead) {
		t.Fatalf("marker = %+v, want the second lead's", m)
	}
	// A true repeat of the second is a duplicate.
	task, _ := lead.NewTask(second)
	if err := e.h.ProcessTask(ctx, task); err != nil || e.h.Stats().Duplicates != 1 {
		t.Fatalf("repeat = %v, stats %+v", err, e.h.Stats())
	}
}

// Case 4: asynq archives a task whenever Retried >= MaxRetry, whatever
// IsFailure says (TestSpareRun measures it). Backpressure on a lead's last
// counted attempt must not archive it behind LeadRelay's back: the run is
// not its last (tasks carry one spare run), and where the spare run is
// spent (asynq's recoverer counts an expired lease as a failure, which
// leaves Retried == MaxRetry; MaxRetry(0) starts there), it is
// dead-lettered with its reason.
func TestEdgeBackpressureOnLastAttempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []asynq.Option
		refusals int64
		want     string // delivered | dead
	}{
		{"budget of one retry, refused on the last", lead.TaskOptions(lead.DefaultQueue, 1, time.Hour), 3, "delivered"},
		{"spare run spent", []asynq.Option{asynq.Queue(lead.DefaultQueue), asynq.MaxRetry(0)}, 1, "dead"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			rc := srv.Client()
			crm := newFakeCRM(crmclient.V2)
			crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
				if n == 1 {
					return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
				}
				return true, nil
			})
			box := &deadBox{reasons: map[string]delivery.Reason{}}
			lim := &refuseAfterFirst{left: tc.refusals}
			if tc.want == "dead" {
				lim.first.Store(true) // refuse from the first run
			}
			o := Options{Concurrency: 1, RetryInitial: 10 * time.Millisecond, RetryMaxDelay: 20 * time.Millisecond,
				BreakerThreshold: 1000, PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
				Limiter: lim, DeadLetters: box}
			runWorkers(t, crm, rc, o, 1)
			task, p := newLeadTask(t)
			if _, err := asynq.NewClientFromRedisClient(rc).Enqueue(task, tc.opts...); err != nil {
				t.Fatal(err)
			}
			insp := asynq.NewInspectorFromRedisClient(rc)
			deadline := time.Now().Add(20 * time.Second)
			for {
				info, err := insp.GetTaskInfo(lead.DefaultQueue, p.ID)
				if err == nil && (info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived) {
					reason, inBox := box.reason(p.ID)
					switch tc.want {
					case "delivered":
						if info.State != asynq.TaskStateCompleted || inBox {
							t.Fatalf("task %s, dead store %q; want delivered", info.State, reason)
						}
					case "dead":
						if info.State != asynq.TaskStateArchived || reason.Code != delivery.RetriesExhausted || reason.Last != delivery.RateLimit {
							t.Fatalf("task %s, dead store %+v (%v); want archived with its reason", info.State, reason, inBox)
						}
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("task not settled after 20s: %+v %v", info, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// refuseAfterFirst admits the first CRM request, then refuses left times.
type refuseAfterFirst struct {
	first atomic.Bool // set: the first request was admitted
	left  int64
	n     atomic.Int64
}

func (r *refuseAfterFirst) Acquire(context.Context) (func(), error) {
	if r.first.CompareAndSwap(false, true) {
		return func() {}, nil
	}
	if r.n.Add(1) <= r.left {
		return nil, &DelayError{Delay: 10 * time.Millisecond, Reason: delivery.Reason{Code: delivery.RateLimit}}
	}
	return func() {}, nil
}

// Case 5: a current SalesMan answers every v1 add (and info) with HTTP 500
// and an empty body, while stat works. That is a configuration problem:
// deliveries pause without spending attempts, readiness says "set
// LEADRELAY_CRM_API=v2", nothing is resent or dead-lettered.
func TestEdgeV1BrokenAnswers500(t *testing.T) {
	t.Parallel()
	for _, viaStart := range []bool{false, true} {
		t.Run(fmt.Sprintf("preflight at start %v", viaStart), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, crmclient.V1, nil)
			e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return false, http500 })
			e.crm.InfoErr = &crmclient.StatusError{Action: "info", StatusCode: 500}
			ctx := t.Context()
			if viaStart {
				if problem, err := e.h.Preflight(ctx); err != nil || problem.Code != delivery.ConfigV1Broken {
					t.Fatalf("Preflight = %+v, %v; want the v1 add broken", problem, err)
				}
			}
			for range 3 {
				task, _ := newLeadTask(t)
				err := e.h.ProcessTask(ctx, task)
				if IsFailure(err) || judge(err).out != delivery.Paused {
					t.Fatalf("run = %v, want a pause that spends no attempt", err)
				}
			}
			if err := e.h.Ready(ctx); err == nil || !strings.Contains(err.Error(), "LEADRELAY_CRM_API=v2") {
				t.Fatalf("Ready = %v, want the v2 hint", err)
			}
			if adds, _ := e.crm.Counts(); adds > 1 {
				t.Errorf("adds = %d: a paused fleet kept calling the CRM", adds)
			}
		})
	}
}

// Case 6: a configuration problem seen by one worker is a fleet fact:
// another worker's readiness reports it within healthCacheFor (a second),
// without having hit it.
func TestEdgeConfigProblemIsFleetWide(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, nil)
	other := newHandler(t, newFakeCRM(crmclient.V2), e.rdb, e.o, nil)
	if err := other.Ready(ctx); err != nil {
		t.Fatalf("other worker not ready before: %v", err)
	}
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		return false, &crmclient.APIError{Action: "add", Code: 401, Text: "Неизвестный пользователь"}
	})
	task, _ := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Paused {
		t.Fatalf("run = %v, want a pause", err)
	}
	e.clock.Advance(healthCacheFor)
	if err := other.Ready(ctx); err == nil || !strings.Contains(err.Error(), "LEADRELAY_CRM_LOGIN") {
		t.Fatalf("other worker's Ready = %v, want the problem", err)
	}
	// The other worker's deliveries pause too, without calling its CRM.
	otherTask, _ := newLeadTask(t)
	if err := other.ProcessTask(ctx, otherTask); judge(err).out != delivery.Paused && judge(err).out != delivery.Backpressure {
		t.Fatalf("other worker's run = %v, want postponed", err)
	}
}

// Case 7: HTTP 500 (and 502, and a 200 error page) is a complete answer:
// the CRM's request is over, so the lead is looked up at once, in the same
// run, instead of after LEADRELAY_RECONCILE_AFTER.
func TestEdgeAnsweredLooksUpAtOnce(t *testing.T) {
	t.Parallel()
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprintf("stored %v", stored), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, crmclient.V2, nil)
			e.crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
				if n == 1 {
					return stored, http500
				}
				return true, nil
			})
			task, p := newLeadTask(t)
			ctx := t.Context()
			err := e.h.ProcessTask(ctx, task)
			if stored {
				if err != nil || e.marker(p.ID) == nil {
					t.Fatalf("run = %v, want delivered in the same run", err)
				}
			} else {
				if judge(err).out != delivery.Uncertain {
					t.Fatalf("run = %v, want a counted retry", err)
				}
				if st := e.attempt(p.ID)["state"]; st != rdb.StateFailed {
					t.Fatalf("attempt state = %q, want failed (looked up: not stored)", st)
				}
				// No clock advance: the next run sends at once.
				if err := e.h.ProcessTask(ctx, task); err != nil {
					t.Fatalf("second run = %v", err)
				}
			}
			if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 {
				t.Fatalf("CRM holds the lead %d times, want 1", n)
			}
		})
	}
}

// TestReconcileStopsAtWatermark: a v2 look-up pages newest first only down
// to the highest CRM id recorded before the lead's first send; a CRM full
// of older leads costs a page or two, not all of them.
func TestReconcileStopsAtWatermark(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, nil)
	for range 450 { // older leads, delivered through the relay
		other, _ := newLeadTask(t)
		if err := e.h.ProcessTask(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	task, p := newLeadTask(t)
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return false, lostConn })
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	e.crm.SetFail(nil)
	listed := e.crm.Lists()
	e.clock.Advance(e.h.o.ReconcileAfter)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("look-up run = %v", err)
	}
	lists := e.crm.Lists() - listed
	// The watermark is the top this worker saw at its previous run, so
	// one page more may be read; without it, all three pages are.
	if lists > 2 || e.h.Stats().ReconcileNotFound != 1 || e.crm.PerCompany()[p.Lead.Company] != 1 {
		t.Fatalf("lists = %d, stats %+v; want at most two of three pages, not found, then sent once", lists, e.h.Stats())
	}
}

// feedbackBox is a FeedbackLimiter that records the outcomes it is told.
type feedbackBox struct {
	mu  sync.Mutex
	got []CRMOutcome
}

func (f *feedbackBox) Acquire(context.Context) (func(), error) { return func() {}, nil }
func (f *feedbackBox) AcquireFeedback(context.Context) (func(CRMOutcome), error) {
	return func(o CRMOutcome) { f.mu.Lock(); f.got = append(f.got, o); f.mu.Unlock() }, nil
}

// TestHandlerFeedsTheLimiter: every add tells an adaptive limiter how the
// CRM coped, once: a success is an answer, a 503 a failure (judged by its
// share).
func TestHandlerFeedsTheLimiter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	box := &feedbackBox{}
	e := newEnv(t, crmclient.V2, func(o *Options) { o.Limiter = box })
	e.crm.SetFail(func(n int, _ crmclient.Lead) (bool, error) {
		if n == 1 {
			return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
		}
		return true, nil
	})
	task, _ := newLeadTask(t)
	_ = e.h.ProcessTask(ctx, task)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.got) != 2 || box.got[0] != CRMFailed || box.got[1] != CRMAnswered {
		t.Fatalf("limiter told %v, want [failed answered]", box.got)
	}
}

// TestLookUpComparesWhatWasSent: the client changes a lead on its way (v2's
// ip line in the description, emoji stand-ins), and the CRM lists what it
// received; a look-up by content must compare that, or an unstamped lead
// is sent twice.
func TestLookUpComparesWhatWasSent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, nil)
	e.crm.NoStamp = true
	e.crm.Transform = func(l crmclient.Lead) crmclient.Lead {
		l.Description += "\nIP: 192.0.2.7"
		return l
	}
	task, p := newLeadTask(t)
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) { return true, lostConn })
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	e.crm.SetFail(nil)
	e.clock.Advance(e.h.o.ReconcileAfter)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 || e.h.Stats().ReconcileFound != 1 {
		t.Fatalf("CRM holds the lead %d times (stats %+v), want 1, found by the look-up", n, e.h.Stats())
	}
}

// TestAddWaitsForReplicas: with WaitReplicas, an add goes out only once a
// replica holds the lead's "sending" record, so a failover cannot forget
// that the add was sent (and let the next run add again without a look-up).
// Without enough replicas the run is postponed and nothing is sent.
func TestAddWaitsForReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	primary := redistest.Start(t)
	e := newEnvOn(t, primary, crmclient.V2, func(o *Options) { o.WaitReplicas = 1; o.WaitTimeout = 200 * time.Millisecond })
	task, p := newLeadTask(t)
	err := e.h.ProcessTask(ctx, task)
	var de *DelayError
	if !errors.As(err, &de) || IsFailure(err) {
		t.Fatalf("run without a replica = %v, want postponed", err)
	}
	if adds, _ := e.crm.Counts(); adds != 0 || e.attempt(p.ID)["state"] != "" {
		t.Fatalf("adds = %d, attempt %v: sent without a replica, or left a record", adds, e.attempt(p.ID))
	}
	redistest.StartReplica(t, primary)
	deadline := time.Now().Add(20 * time.Second)
	for err = e.h.ProcessTask(ctx, task); err != nil; err = e.h.ProcessTask(ctx, task) {
		if time.Now().After(deadline) {
			t.Fatalf("run with a replica = %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the replica's first sync
	}
	if adds, _ := e.crm.Counts(); adds != 1 {
		t.Fatalf("adds = %d, want 1", adds)
	}
}

// circuitWatch is an Observer that remembers whether any worker saw the
// circuit open.
type circuitWatch struct {
	nopObserver
	opened atomic.Bool
}

func (c *circuitWatch) CRMCircuitOpen(open bool) {
	if open {
		c.opened.Store(true)
	}
}

// TestPoisonLeads (issue 17, point 4): a few leads that always make the
// CRM answer HTTP 500 with an empty body, among many ordinary ones, two
// workers (real asynq servers) on a real Redis, the simulator as the CRM,
// an adaptive limit. The poison leads spend their own attempts and die
// with their reason; the circuit never opens; the adaptive limit is never
// cut (its floor here is the limit itself); every ordinary lead is
// delivered once. Before, every retry of every poison lead counted toward
// the circuit and cut the limit (8 cuts, the limit down to 1, in 5.7 s),
// and once only poison leads were left, their retries opened the circuit.
func TestPoisonLeads(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const (
		ordinary = 200
		poison   = 5
		marker   = "POISON-PILL"
		apiKey   = "poison-test-key"
	)
	sim, client := startSim(t, crmsim.Config{APIKey: apiKey, API: "v2", Seed: 1,
		Faults: crmsim.Faults{PoisonMarker: marker}})
	rc := redistest.Start(t).Client()
	var cuts atomic.Int64
	lim := NewRedisLimiter(rc, 0, 8, 0, WithAdaptiveConcurrency(true), WithLimitReport(func(c AdaptiveChange) {
		if c.Verdict == AdaptiveCut {
			cuts.Add(1)
		}
	}))
	watch := &circuitWatch{}
	box := &deadBox{reasons: map[string]delivery.Reason{}}
	o := Options{
		Concurrency: 8, RetryInitial: 20 * time.Millisecond, RetryMaxDelay: 100 * time.Millisecond, MaxRetry: 3,
		CRMTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second, PollInterval: 20 * time.Millisecond,
		DelayedPollInterval: 50 * time.Millisecond, Limiter: lim, Observer: watch, DeadLetters: box,
	}
	workers := runWorkers(t, client, rc, o, 2)

	enq := asynq.NewClientFromRedisClient(rc)
	var good, bad []lead.Payload
	for i := range ordinary + poison {
		l := lead.Lead{Title: "Ann", Email: "ann@example.com", Company: fmt.Sprintf("co-%d", i), Description: "call me"}
		isPoison := i%(ordinary/poison) == ordinary/poison/2 && len(bad) < poison
		if isPoison {
			l.Description = "call me " + marker
		}
		p := lead.NewPayload("shop", fmt.Sprintf("poison-test-%d", i), l, time.Now())
		task, err := lead.NewTask(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enq.Enqueue(task, lead.TaskOptions(lead.DefaultQueue, o.MaxRetry, time.Hour)...); err != nil {
			t.Fatal(err)
		}
		if isPoison {
			bad = append(bad, p)
		} else {
			good = append(good, p)
		}
	}
	store := rdb.New(rc)
	deadline := time.Now().Add(90 * time.Second)
	for {
		delivered := 0
		for _, p := range good {
			if _, m, _ := store.Lead(ctx, p.ID); m != nil {
				delivered++
			}
		}
		dead := 0
		for _, p := range bad {
			if _, ok := box.reason(p.ID); ok {
				dead++
			}
		}
		if delivered == len(good) && dead == len(bad) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %d of %d ordinary leads delivered, %d of %d poison leads dead",
				delivered, len(good), dead, len(bad))
		}
		time.Sleep(50 * time.Millisecond)
	}

	stored := map[string]int{}
	for _, l := range sim.Leads() {
		stored[l.Company]++
	}
	for _, p := range good {
		if n := stored[p.Lead.Company]; n != 1 {
			t.Errorf("ordinary lead %s is in the CRM %d times, want 1", p.ID, n)
		}
	}
	want := delivery.Reason{Code: delivery.RetriesExhausted, Last: delivery.CRMErrorPage, HTTPStatus: 500}
	for _, p := range bad {
		if n := stored[p.Lead.Company]; n != 0 {
			t.Errorf("poison lead %s is in the CRM %d times", p.ID, n)
		}
		if r, _ := box.reason(p.ID); r != want {
			t.Errorf("poison lead %s died of %+v, want %+v", p.ID, r, want)
		}
	}
	var faults int64
	for _, w := range workers {
		faults += w.h.Stats().LeadFaults
	}
	limit, _ := lim.(*redisLimiter).Limit(ctx)
	t.Logf("poison adds answered 500: %d; failures told apart as the lead's: %d; limit cuts: %d; limit now %.0f",
		sim.Stats().Faults["poison"], faults, cuts.Load(), limit)
	if watch.opened.Load() {
		t.Error("the circuit opened")
	}
	if n := cuts.Load(); n != 0 {
		t.Errorf("the adaptive limit was cut %d times, want never (an HTTP 500 is no load signal)", n)
	}
	if faults == 0 {
		t.Error("no failure was told apart as its lead's")
	}
}

// TestSkewedClock (issue 17, point 2): two workers on one Redis, one whose
// host clock runs 5 minutes ahead. An add of the other one times out (the
// CRM commits it later); the skewed worker must not look it up before the
// reconcile wait is over, so it neither misses the late commit nor sends
// the lead again. It logs its offset once. Before, the settle time written
// on one clock was read on the other: the skewed worker looked up at once,
// found nothing, and added the lead a second time.
func TestSkewedClock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rc := redistest.Start(t).Client()
	fake := newFakeCRM(crmclient.V2)
	var late crmclient.Lead
	fake.SetFail(func(n int, l crmclient.Lead) (bool, error) {
		if n == 1 {
			late = l // the CRM commits it after the client gave up
			return false, lostConn
		}
		return true, nil
	})
	o := Options{CRMTimeout: time.Second, BreakerThreshold: 1000}
	core, logs := observer.New(zap.WarnLevel)
	skewed := o
	skewed.Clock = func() time.Time { return time.Now().Add(5 * time.Minute) }
	right := newHandler(t, fake, rc, o, nil)
	ahead := newHandler(t, fake, rc, skewed, zap.New(core))
	sctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	right.Start(sctx)
	ahead.Start(sctx)

	task, p := newLeadTask(t)
	if err := right.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	err := ahead.ProcessTask(ctx, task)
	var de *DelayError
	if !errors.As(err, &de) || de.Reason.Code != delivery.LookUpWait {
		t.Fatalf("the skewed worker's run = %v, want postponed until the reconcile wait is over", err)
	}
	if s := ahead.Stats(); s.ReconcileNotFound+s.ReconcileFound+s.ReconcileUnknown != 0 {
		t.Fatalf("the skewed worker looked the lead up early: %+v", s)
	}
	fake.Store(late)
	// Each worker measures its offset to Redis's clock within half a round
	// trip, so two workers may disagree by a few milliseconds: a wait is
	// right when it is the reconcile wait give or take ClockSkewWarn, and
	// wrong by the 5 minutes of skew this test is about.
	if de.Delay > right.o.ReconcileAfter+ClockSkewWarn {
		t.Fatalf("postponed %v, want about the reconcile wait %v", de.Delay, right.o.ReconcileAfter)
	}
	for range 3 { // the wait, then at most two rounding remainders
		time.Sleep(de.Delay) // bounded above: the reconcile wait and ClockSkewWarn
		err = ahead.ProcessTask(ctx, task)
		if !errors.As(err, &de) || de.Reason.Code != delivery.LookUpWait || de.Delay > ClockSkewWarn {
			break
		}
	}
	if err != nil {
		t.Fatalf("look-up run = %v", err)
	}
	if n := fake.PerCompany()[p.Lead.Company]; n != 1 {
		t.Fatalf("the CRM holds the lead %d times, want 1", n)
	}

	// The other way: the skewed worker's settle time does not hold the
	// right one back by its 5 minutes.
	task2, _ := newLeadTask(t)
	fake.SetFail(func(int, crmclient.Lead) (bool, error) { return false, lostConn })
	if err := ahead.ProcessTask(ctx, task2); judge(err).out != delivery.Uncertain {
		t.Fatalf("skewed worker's send = %v, want uncertain", err)
	}
	if err := right.ProcessTask(ctx, task2); !errors.As(err, &de) || de.Delay > right.o.ReconcileAfter+ClockSkewWarn {
		t.Fatalf("the right worker's run = %v, want postponed about %v", err, right.o.ReconcileAfter)
	}

	warned := logs.FilterMessageSnippet("clock differs from Redis's").All()
	if len(warned) != 1 {
		t.Fatalf("%d clock warnings, want 1", len(warned))
	}
	off, _ := warned[0].ContextMap()["offset"].(time.Duration)
	if off > -5*time.Minute+time.Second || off < -5*time.Minute-time.Second {
		t.Errorf("logged offset %v, want about -5m", off)
	}
}

// TestLookUpAgainWhenEarly (issue 17, point 3): an add timed out and the
// CRM commits it 8 s later. The record's settle time was written by a
// worker with LEADRELAY_RECONCILE_AFTER=2s; the fleet now runs with 10s
// (what the CRM may take). A look-up the old settle time lets run finds
// nothing: the lead is looked up again once 10 s since the send have
// passed, and found, not sent a second time. Before, it was resent at
// once, and the CRM held it twice.
func TestLookUpAgainWhenEarly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, crmclient.V2, func(o *Options) { o.CRMTimeout, o.ReconcileAfter = time.Second, 2*time.Second })
	var late crmclient.Lead
	e.crm.SetFail(func(n int, l crmclient.Lead) (bool, error) {
		if n == 1 {
			late = l
			return false, lostConn
		}
		return true, nil
	})
	task, p := newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); judge(err).out != delivery.Uncertain {
		t.Fatalf("first run = %v, want uncertain", err)
	}
	o := e.o
	o.ReconcileAfter = 10 * time.Second
	careful := newHandler(t, e.crm, e.rdb, o, nil)
	e.clock.Advance(2 * time.Second) // the old settle time has passed
	err := careful.ProcessTask(ctx, task)
	var de *DelayError
	if !errors.As(err, &de) || de.Reason.Code != delivery.LookUpWait || de.Delay != 8*time.Second {
		t.Fatalf("early look-up run = %v, want postponed 8s to look up again", err)
	}
	if adds, _ := e.crm.Counts(); adds != 1 {
		t.Fatalf("%d adds after the early look-up, want 1 (no resend)", adds)
	}
	e.crm.Store(late) // the CRM commits the first add
	e.clock.Advance(de.Delay)
	if err := careful.ProcessTask(ctx, task); err != nil {
		t.Fatalf("second look-up run = %v", err)
	}
	if n := e.crm.PerCompany()[p.Lead.Company]; n != 1 {
		t.Fatalf("the CRM holds the lead %d times, want 1", n)
	}
	if m := e.marker(p.ID); m == nil || m.Via != "reconcile" {
		t.Fatalf("marker = %+v, want found by the second look-up", m)
	}
}

// TestOldMarkerAcrossKeyedDigests (issue 18): a delivered marker written
// before digests were keyed (the plain v1 digest's first 64 bits) still
// stops a repeat whose task an upgraded intake digested under the id key:
// no second add. Another lead under the same id is still a new lead.
func TestOldMarkerAcrossKeyedDigests(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	k, err := lead.NewIDKey([]byte(strings.Repeat("k", lead.IDKeySize)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, crmclient.V2, func(o *Options) { o.IDKey = k })
	ann := lead.Lead{Title: "Ann", Company: "ann-co"}
	old := lead.NewPayload("shop", "order-8", ann, time.Now()) // v1 Sum: the previous version's
	task, _ := lead.NewTask(old)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	again := old
	again.Sum = string(k.Digest(ann))
	task, _ = lead.NewTask(again)
	if err := e.h.ProcessTask(ctx, task); err != nil || e.h.Stats().Duplicates != 1 {
		t.Fatalf("repeat digested under the key = %v, stats %+v; want a duplicate", err, e.h.Stats())
	}
	bob := lead.Lead{Title: "Bob", Company: "bob-co"}
	other := lead.NewPayload("shop", "order-8", bob, time.Now())
	other.Sum = string(k.Digest(bob))
	task, _ = lead.NewTask(other)
	for i := 0; i < 2; i++ { // the stale marker is dropped, then the lead goes
		err := e.h.ProcessTask(ctx, task)
		var de *DelayError
		if err != nil && !errors.As(err, &de) {
			t.Fatal(err)
		}
	}
	if per := e.crm.PerCompany(); per["ann-co"] != 1 || per["bob-co"] != 1 {
		t.Fatalf("CRM leads = %v, want each lead once", per)
	}
}
