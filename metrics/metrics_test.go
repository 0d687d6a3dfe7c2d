package metrics_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"leadrelay/intake"
	"leadrelay/metrics"
	"leadrelay/worker"
)

func TestMetricsCount(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.KnownSites("shop")

	m.IntakeRequest("shop", "accepted")
	m.IntakeRequest("shop", "accepted")
	m.IntakeRequest("", "unauthorized")
	m.Enqueued(3 * time.Millisecond)
	m.CRMRequest("add", "ok", 120*time.Millisecond)
	m.CRMRequest("list", "transient", time.Second)
	m.Delivery("shop", worker.DeliveryDelivered)
	m.Delivery("shop", worker.DeliveryRetried)
	m.DeliveryLatency(2 * time.Second)
	m.CRMCircuitOpen(true)
	m.CRMConfigProblem(true)

	want := `
# HELP leadrelay_intake_requests_total Intake requests answered, by site ("unknown" when not authenticated as a known site) and outcome.
# TYPE leadrelay_intake_requests_total counter
leadrelay_intake_requests_total{outcome="accepted",site="shop"} 2
leadrelay_intake_requests_total{outcome="unauthorized",site="unknown"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "leadrelay_intake_requests_total"); err != nil {
		t.Error(err)
	}
	for name, wantN := range map[string]int{
		"leadrelay_enqueue_duration_seconds":      1,
		"leadrelay_crm_request_duration_seconds":  2, // two series: add/ok, list/transient
		"leadrelay_lead_delivery_latency_seconds": 1,
		"leadrelay_deliveries_total":              len(metrics.DeliveryOutcomes),
		"leadrelay_site_deliveries_total":         2, // shop/delivered, shop/retried
		"leadrelay_crm_circuit_open":              1,
		"leadrelay_crm_config_problem":            1,
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != wantN {
			t.Errorf("%s: %d series (err %v), want %d", name, n, err, wantN)
		}
	}
	gauges := func() string {
		mfs, _ := reg.Gather()
		var b strings.Builder
		for _, mf := range mfs {
			switch mf.GetName() {
			case "leadrelay_crm_circuit_open", "leadrelay_crm_config_problem":
				fmt.Fprintf(&b, "%s=%g ", mf.GetName(), mf.GetMetric()[0].GetGauge().GetValue())
			case "leadrelay_deliveries_total":
				for _, s := range mf.GetMetric() {
					if v := s.GetCounter().GetValue(); v > 0 {
						fmt.Fprintf(&b, "%s=%g ", s.GetLabel()[0].GetValue(), v)
					}
				}
			}
		}
		return b.String()
	}
	if got, want := gauges(), "leadrelay_crm_circuit_open=1 leadrelay_crm_config_problem=1 delivered=1 retried=1 "; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	m.CRMCircuitOpen(false)
	m.CRMConfigProblem(false)
	if got, want := gauges(), "leadrelay_crm_circuit_open=0 leadrelay_crm_config_problem=0 delivered=1 retried=1 "; got != want {
		t.Errorf("after reset: got %q, want %q", got, want)
	}
}

// TestNilMetrics: a nil *Metrics, also inside the observer interfaces, is
// a working no-op.
func TestNilMetrics(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.KnownSites("shop")
	var io intake.Observer = m
	io.IntakeRequest("shop", "accepted")
	io.Enqueued(time.Millisecond)
	var wo worker.Observer = m
	wo.CRMRequest("add", "ok", time.Millisecond)
	wo.Delivery("shop", worker.DeliveryDead)
	wo.DeliveryLatency(time.Second)
	wo.CRMCircuitOpen(true)
	wo.CRMConfigProblem(true)

	// An unregistered Metrics counts too.
	metrics.New(nil).Delivery("shop", worker.DeliveryDelivered)
}

// TestLabelsBounded: whatever callers report, every label takes one of a
// bounded set of values, and a key never becomes a site label.
func TestLabelsBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.KnownSites("shop")
	const secret = "site-key-0123456789"
	m.IntakeRequest(secret, "accepted")
	for i := range 1000 {
		m.IntakeRequest("shop", fmt.Sprintf("outcome_%d", i))
		m.IntakeRequest(fmt.Sprintf("site%d", i), "accepted")
		m.CRMRequest(fmt.Sprintf("action%d", i), fmt.Sprintf("class%d", i), time.Millisecond)
		m.Delivery("shop", fmt.Sprintf("outcome%d", i))
	}
	m.IntakeRequest("shop", "Not A Name\n")

	text := gatherText(t, reg)
	if strings.Contains(text, secret) {
		t.Errorf("a key became a label:\n%s", text)
	}
	for name, max := range map[string]int{
		// MaxOutcomes outcomes for shop, "other" for shop, "accepted" for unknown.
		"leadrelay_intake_requests_total":        metrics.MaxOutcomes + 2,
		"leadrelay_crm_request_duration_seconds": 1,
		"leadrelay_deliveries_total":             len(metrics.DeliveryOutcomes) + 1,
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n > max {
			t.Errorf("%s: %d series (err %v), want at most %d", name, n, err, max)
		}
	}
	for _, want := range []string{
		`leadrelay_intake_requests_total{outcome="accepted",site="unknown"} 1001`,
		`leadrelay_intake_requests_total{outcome="other",site="shop"} ` + fmt.Sprint(1000-(metrics.MaxOutcomes-1)+1), // "accepted" took a slot
		`leadrelay_crm_request_duration_seconds_count{action="other",class="other"} 1000`,
		`leadrelay_deliveries_total{outcome="other"} 1000`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %s in\n%s", want, text)
		}
	}
}

// TestDeliveryOutcomes: the worker's outcomes are the metric's label values.
func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	for _, o := range []string{
		worker.DeliveryDelivered, worker.DeliveryReconciled, worker.DeliveryDuplicateSkipped,
		worker.DeliveryRetried, worker.DeliveryDead, worker.DeliveryPaused, worker.DeliveryBackpressure,
	} {
		if !slices.Contains(metrics.DeliveryOutcomes, o) {
			t.Errorf("worker outcome %q is not in metrics.DeliveryOutcomes", o)
		}
	}
}

func gatherText(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name, v := mf.GetName(), 0.0
			switch {
			case s.Counter != nil:
				v = s.GetCounter().GetValue()
			case s.Histogram != nil:
				name, v = name+"_count", float64(s.GetHistogram().GetSampleCount())
			case s.Gauge != nil:
				v = s.GetGauge().GetValue()
			}
			fmt.Fprintf(&b, "%s{%s} %g\n", name, strings.Join(labels, ","), v)
		}
	}
	return b.String()
}

// TestCRMConcurrencyLimit: the adaptive limit's moves show as gauges and a
// counter of verdicts.
func TestCRMConcurrencyLimit(t *testing.T) {
	t.Parallel()
	type move struct {
		limit   int
		verdict string
		goodput float64
	}
	for _, tc := range []struct {
		name        string
		moves       []move
		wantLimit   float64
		wantGoodput float64
		wantCounts  map[string]float64
	}{
		{"nothing yet", nil, 0, 0, map[string]float64{"measured": 0, "collapse": 0}},
		{"climbing", []move{{3, "measured", 30}, {4, "measured", 40}}, 4, 40, map[string]float64{"measured": 2}},
		{"a cut keeps the last goodput", []move{{8, "measured", 50}, {6, "cut", 0}}, 6, 50, map[string]float64{"measured": 1, "cut": 1}},
		{"an unknown verdict counts as other", []move{{2, "sideways", 0}}, 2, 0, map[string]float64{metrics.Other: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewPedanticRegistry()
			m := metrics.New(reg)
			for _, mv := range tc.moves {
				m.CRMConcurrencyLimit(mv.limit, mv.verdict, mv.goodput)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]float64{}
			var limit, goodput float64
			for _, mf := range mfs {
				switch mf.GetName() {
				case "leadrelay_crm_concurrency_limit":
					limit = mf.GetMetric()[0].GetGauge().GetValue()
				case "leadrelay_crm_goodput":
					goodput = mf.GetMetric()[0].GetGauge().GetValue()
				case "leadrelay_crm_limit_verdicts_total":
					for _, s := range mf.GetMetric() {
						counts[s.GetLabel()[0].GetValue()] = s.GetCounter().GetValue()
					}
				}
			}
			if limit != tc.wantLimit || goodput != tc.wantGoodput {
				t.Errorf("limit %g, goodput %g; want %g, %g", limit, goodput, tc.wantLimit, tc.wantGoodput)
			}
			for v, want := range tc.wantCounts {
				if counts[v] != want {
					t.Errorf("verdict %s counted %g, want %g (all: %v)", v, counts[v], want, counts)
				}
			}
		})
	}
	var nilM *metrics.Metrics
	nilM.CRMConcurrencyLimit(3, "measured", 1) // a nil *Metrics does nothing
}
