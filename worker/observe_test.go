package worker

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crmclient"
	"leadrelay/delivery"
)

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu            sync.Mutex
	events        []string
	sites         []string // of each Delivery
	latencies     []time.Duration
	circuit, conf bool
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}
func (r *recorder) CRMRequest(action, class string, _ time.Duration) {
	r.add("crm " + action + " " + class)
}
func (r *recorder) Delivery(site, outcome string) {
	r.add(outcome)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sites = append(r.sites, site)
}
func (r *recorder) DeliveryLatency(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latencies = append(r.latencies, d)
}
func (r *recorder) CRMCircuitOpen(open bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.circuit = open
}
func (r *recorder) CRMConfigProblem(p bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conf = p
}

// take returns the events since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func (r *recorder) deliverySites() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sites)
}

func (r *recorder) state() (circuit, conf bool, latencies []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.circuit, r.conf, slices.Clone(r.latencies)
}

func TestObserver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rec := &recorder{}
	e := newEnv(t, crmclient.V2, func(o *Options) {
		o.Observer = rec
		o.BreakerThreshold = 1
		o.BreakerCooldown = time.Minute
	})

	task, p := newLeadTask(t)
	e.clock.Set(time.Unix(0, p.ReceivedAt.Add(3*time.Second).UnixNano()))
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.take(), []string{"crm add ok", DeliveryDelivered, DeliveryDuplicateSkipped}; !slices.Equal(got, want) {
		t.Errorf("delivery events = %q, want %q", got, want)
	}
	if got, want := rec.deliverySites(), []string{p.Site, p.Site}; !slices.Equal(got, want) {
		t.Errorf("delivery sites = %q, want the lead's %q", got, want)
	}
	if _, _, lat := rec.state(); !slices.Equal(lat, []time.Duration{3 * time.Second}) {
		t.Errorf("latencies = %v, want [3s] (received -> in CRM)", lat)
	}

	// A configuration problem sets the gauge and pauses the fleet.
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		return false, &crmclient.APIError{Action: "add", Code: 401, Text: "Не верный логин"}
	})
	task, _ = newLeadTask(t)
	err := e.h.ProcessTask(ctx, task)
	observeFailure(rec, "shop", judge(err))
	if got, want := rec.take(), []string{"crm add config", DeliveryPaused}; !slices.Equal(got, want) {
		t.Errorf("config events = %q, want %q", got, want)
	}
	if _, conf, _ := rec.state(); !conf {
		t.Error("config problem gauge not set")
	}

	// After the cooldown, the probe fails transiently: the circuit reopens.
	e.clock.Advance(time.Minute)
	e.crm.SetFail(func(int, crmclient.Lead) (bool, error) {
		return false, &crmclient.StatusError{Action: "add", StatusCode: 503}
	})
	task, _ = newLeadTask(t)
	err = e.h.ProcessTask(ctx, task)
	observeFailure(rec, "shop", judge(err))
	if got, want := rec.take(), []string{"crm add transient", DeliveryRetried}; !slices.Equal(got, want) {
		t.Errorf("transient events = %q, want %q", got, want)
	}
	if circuit, _, _ := rec.state(); !circuit {
		t.Error("circuit gauge not set when the circuit opened")
	}
	open, wait, err := e.h.CircuitState(ctx)
	if err != nil || !open || wait != time.Minute {
		t.Errorf("CircuitState = %v, %v, %v; want open for 1m", open, wait, err)
	}

	// Recovery closes the circuit and clears the configuration problem.
	e.clock.Advance(time.Minute)
	e.crm.SetFail(nil)
	task, _ = newLeadTask(t)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if circuit, conf, _ := rec.state(); circuit || conf {
		t.Errorf("after recovery: circuit %v, config problem %v; want both cleared", circuit, conf)
	}
	if open, _, err := e.h.CircuitState(ctx); open || err != nil {
		t.Errorf("CircuitState after recovery = %v, %v", open, err)
	}
}

// TestObserveFailure: asynq's error handler reports each failure once, as
// classify sees it.
func TestObserveFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{&crmclient.StatusError{Action: "add", StatusCode: 503}, DeliveryRetried},
		{&deadError{reason: delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503}.Exhausted(), err: &crmclient.StatusError{Action: "add", StatusCode: 503}}, DeliveryDead},
		{&crmclient.TransportError{Action: "add", Sent: true, Err: io.ErrUnexpectedEOF}, DeliveryRetried},
		{fmt.Errorf("dead: %w", asynq.SkipRetry), DeliveryDead},
		{&DelayError{Delay: time.Second, Reason: delivery.Reason{Code: delivery.CircuitOpen}}, DeliveryPaused},
		{&DelayError{Delay: time.Second, Reason: delivery.Reason{Code: delivery.CRMPause}}, DeliveryPaused},
		{&DelayError{Delay: time.Second, Reason: delivery.Reason{Code: delivery.ConcurrencyCap}}, DeliveryBackpressure},
		{&DelayError{Reason: delivery.Reason{Code: delivery.ConfigAPIKey}, Err: &crmclient.APIError{Action: "add", Code: 400}}, DeliveryPaused},
		{&DelayError{Err: &crmclient.APIError{Action: "add", Code: 400}}, DeliveryPaused},
		{&DelayError{Delay: time.Second}, DeliveryBackpressure},
		{asynq.ErrLeaseExpired, DeliveryBackpressure},
	}
	for _, tc := range tests {
		rec := &recorder{}
		observeFailure(rec, "shop", judge(tc.err))
		if got, sites := rec.take(), rec.deliverySites(); !slices.Equal(got, []string{tc.want}) || !slices.Equal(sites, []string{"shop"}) {
			t.Errorf("observeFailure(%v) = %q of sites %q, want %s of shop", tc.err, got, sites, tc.want)
		}
	}
}
