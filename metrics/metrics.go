package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values used when a reported value is outside the bounded set.
const (
	// UnknownSite is the site label of requests from no known site.
	UnknownSite = "unknown"
	// Other is the label of an outcome, action or class outside the known
	// set (or past MaxOutcomes).
	Other = "other"
	// NoOutcome is the outcome label of a request nobody noted an outcome for.
	NoOutcome = "none"
)

// MaxOutcomes bounds the distinct intake outcome labels. Outcomes are names
// chosen in code, so the bound is only reached by a bug; later ones count
// as Other.
const MaxOutcomes = 32

// DeliveryOutcomes are the values of leadrelay_deliveries_total's outcome
// label; each starts at zero. They match the worker.Delivery* constants.
var DeliveryOutcomes = []string{
	"delivered", "reconciled", "duplicate_skipped", "retried", "dead", "paused", "backpressure",
}

// crmActions and crmClasses bound the labels of CRM request latency; the
// classes are "ok" and the crmclient.Class names.
var (
	crmActions = set("add", "list", "info", "stat")
	crmClasses = set("ok", "transient", "ambiguous", "permanent", "config")
	// crmVerdicts are the adaptive limit's verdicts (worker.AdaptiveVerdict
	// names).
	crmVerdicts = set("measured", "knee", "collapse", "cut")
)

// Metrics records LeadRelay's metrics. Build it with New. All methods are
// safe for concurrent use and do nothing on a nil *Metrics.
type Metrics struct {
	intakeRequests  *prometheus.CounterVec
	undecodable     *prometheus.CounterVec
	enqueue         prometheus.Histogram
	deliveries      *prometheus.CounterVec
	siteDeliveries  *prometheus.CounterVec
	crmRequests     *prometheus.HistogramVec
	circuitOpen     prometheus.Gauge
	circuitChanges  *prometheus.CounterVec
	configProblem   prometheus.Gauge
	deliveryLatency prometheus.Histogram
	crmLimit        prometheus.Gauge
	crmGoodput      prometheus.Gauge
	crmLimitMoves   *prometheus.CounterVec
	deadAdopted     prometheus.Counter
	strippedLate    prometheus.Counter
	audit           auditMetrics

	sites      atomic.Pointer[map[string]bool] // known site names
	deliveryOK map[string]bool

	outcomesMu sync.RWMutex
	outcomes   map[string]bool // intake outcomes seen, at most MaxOutcomes
	dsites     map[string]bool // delivery site labels, at most MaxDeliverySites
}

// New builds the metrics and registers them with reg; a nil reg registers
// nothing (the metrics still count, for tests). It panics when reg already
// holds metrics of the same names, like prometheus.MustRegister. No site is
// known until KnownSites names them.
func New(reg prometheus.Registerer) *Metrics {
	d := declareWith(reg)
	m := &Metrics{
		intakeRequests: d.counterVec("leadrelay_intake_requests_total",
			`Intake requests answered, by site ("unknown" when not authenticated as a known site) and outcome.`, "site", "outcome"),
		undecodable: d.counterVec("leadrelay_intake_undecodable_total",
			"Drop-in requests, by site, whose bytes were not all text in the charset they declared (or the site's): the lead was kept, read as well as could be; set the site's charset or fix its form.", "site"),
		enqueue: d.histogram("leadrelay_enqueue_duration_seconds",
			"Time intake took to enqueue a lead in Redis (failed attempts included).",
			prometheus.ExponentialBuckets(0.0005, 2, 15)), // 0.5 ms .. 8 s
		deliveries: d.counterVec("leadrelay_deliveries_total",
			"Processed lead tasks by outcome: delivered, reconciled (found in the CRM after an ambiguous attempt), duplicate_skipped, retried, dead, paused (deliveries paused: a CRM configuration problem, an outage's open circuit, the CRM's Retry-After), backpressure (LeadRelay's own rate and concurrency limits, a busy lock, a look-up's wait).", "outcome"),
		siteDeliveries: d.counterVec("leadrelay_site_deliveries_total",
			"Processed lead tasks by site and outcome (the outcomes of leadrelay_deliveries_total).", "site", "outcome"),
		crmRequests: d.histogramVec("leadrelay_crm_request_duration_seconds",
			`CRM request latency by action and class ("ok" or the error class: transient, ambiguous, permanent, config).`,
			[]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}, "action", "class"),
		circuitOpen: d.gauge("leadrelay_crm_circuit_open",
			"1 while the shared CRM circuit breaker is open (deliveries postponed without spending attempts), as this process last saw it."),
		circuitChanges: d.counterVec("leadrelay_crm_circuit_changes_total",
			`Outages of the CRM as the fleet's circuit saw them, counted by the worker whose call opened the circuit (to="open") or closed it (to="closed"): summed over the fleet, each outage once.`, "to"),
		configProblem: d.gauge("leadrelay_crm_config_problem",
			"1 while deliveries are paused by a CRM configuration problem (see /readyz for the fix)."),
		deliveryLatency: d.histogram("leadrelay_lead_delivery_latency_seconds",
			"Time from intake receiving a lead to the lead being recorded in the CRM.",
			[]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600}),
		crmLimit: d.gauge("leadrelay_crm_concurrency_limit",
			"The fleet's adaptive CRM concurrency limit (requests in flight across all workers), as this process last saw it move; LEADRELAY_CRM_MAX_CONCURRENT is its ceiling."),
		crmGoodput: d.gauge("leadrelay_crm_goodput",
			"CRM requests the fleet completed per second in the adaptive limit's last measured epoch, as this process last saw it."),
		crmLimitMoves: d.counterVec("leadrelay_crm_limit_verdicts_total",
			"Verdicts of the adaptive CRM concurrency limit reported to this process: measured (an epoch measured a level), knee (more slots gave no more goodput, or less), collapse (a request stalled: the level is avoided 5 minutes), cut (timeout, 5xx or 429).", "verdict"),
		deadAdopted: d.counter("leadrelay_dead_letters_recorded_late_total",
			"Dead leads found in asynq's archive with no dead-letter record (its write failed when the lead died, Redis being down) and recorded after the fact by this process's dead-letter sweep."),
		strippedLate: d.counter("leadrelay_delivered_stripped_late_total",
			"Delivered leads' completed tasks this process's strip sweep reduced to their envelopes after the fact: the worker that delivered them died, or gave them up, before its own strip (issue 18)."),
		audit:      newAuditMetrics(d),
		deliveryOK: set(DeliveryOutcomes...),
		outcomes:   map[string]bool{},
		dsites:     map[string]bool{},
	}
	for _, o := range DeliveryOutcomes {
		m.deliveries.WithLabelValues(o)
	}
	m.circuitChanges.WithLabelValues("open")
	m.circuitChanges.WithLabelValues("closed")
	for v := range crmVerdicts {
		m.crmLimitMoves.WithLabelValues(v)
	}
	return m
}

// KnownSites names the sites whose requests are counted under their own
// name; it replaces the previous set. Call it with site names, never keys.
func (m *Metrics) KnownSites(names ...string) {
	if m == nil {
		return
	}
	s := set(names...)
	m.sites.Store(&s)
}

// IntakeRequest counts one answered intake request (intake.Observer).
func (m *Metrics) IntakeRequest(site, outcome string) {
	if m == nil {
		return
	}
	m.intakeRequests.WithLabelValues(m.siteLabel(site), m.outcomeLabel(outcome)).Inc()
}

// Undecodable counts one drop-in request whose text was not valid in its
// charset (intake.Observer).
func (m *Metrics) Undecodable(site string) {
	if m == nil {
		return
	}
	m.undecodable.WithLabelValues(m.siteLabel(site)).Inc()
}

// Enqueued records how long one enqueue took (intake.Observer).
func (m *Metrics) Enqueued(d time.Duration) {
	if m == nil {
		return
	}
	m.enqueue.Observe(d.Seconds())
}

// CRMRequest records one CRM call's latency (worker.Observer).
func (m *Metrics) CRMRequest(action, class string, d time.Duration) {
	if m == nil {
		return
	}
	m.crmRequests.WithLabelValues(bounded(crmActions, action), bounded(crmClasses, class)).Observe(d.Seconds())
}

// Delivery counts how the processing of one lead task of site ended, in
// leadrelay_deliveries_total and leadrelay_site_deliveries_total
// (worker.Observer). The worker passes the site from the lead's task; a
// site name that is not a plain name counts as Other.
func (m *Metrics) Delivery(site, outcome string) {
	if m == nil {
		return
	}
	outcome = bounded(m.deliveryOK, outcome)
	m.deliveries.WithLabelValues(outcome).Inc()
	m.siteDeliveries.WithLabelValues(m.deliverySite(site), outcome).Inc()
}

// DeadRecordedLate counts n dead leads the dead-letter sweep recorded
// after the fact (found in asynq's archive with no dead-letter record).
func (m *Metrics) DeadRecordedLate(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.deadAdopted.Add(float64(n))
}

// StrippedLate counts n delivered leads' tasks the strip sweep reduced
// to their envelopes after the fact (their worker's own strip never ran).
func (m *Metrics) StrippedLate(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.strippedLate.Add(float64(n))
}

// DeliveryLatency records the time from intake to the CRM for one lead
// (worker.Observer).
func (m *Metrics) DeliveryLatency(d time.Duration) {
	if m == nil {
		return
	}
	m.deliveryLatency.Observe(max(d, 0).Seconds())
}

// CRMCircuitOpen sets the circuit-breaker gauge (worker.Observer).
func (m *Metrics) CRMCircuitOpen(open bool) {
	if m == nil {
		return
	}
	m.circuitOpen.Set(b2f(open))
}

// CRMCircuitChanged counts an outage's start (open) or end (closed) that
// this process's worker saw (worker.Options.OnOutage).
func (m *Metrics) CRMCircuitChanged(open bool) {
	if m == nil {
		return
	}
	to := "closed"
	if open {
		to = "open"
	}
	m.circuitChanges.WithLabelValues(to).Inc()
}

// CRMConfigProblem sets the configuration-problem gauge (worker.Observer).
func (m *Metrics) CRMConfigProblem(problem bool) {
	if m == nil {
		return
	}
	m.configProblem.Set(b2f(problem))
}

// CRMConcurrencyLimit records a move of the fleet's adaptive CRM
// concurrency limit: the limit after it, the verdict's name (one of
// measured, knee, collapse, cut; others count as Other) and the measured
// goodput in requests per second (0: none measured, the gauge keeps its
// value). The application calls it from worker.WithLimitReport.
func (m *Metrics) CRMConcurrencyLimit(limit int, verdict string, goodput float64) {
	if m == nil {
		return
	}
	m.crmLimit.Set(float64(limit))
	if goodput > 0 {
		m.crmGoodput.Set(goodput)
	}
	m.crmLimitMoves.WithLabelValues(bounded(crmVerdicts, verdict)).Inc()
}

func (m *Metrics) siteLabel(site string) string {
	if s := m.sites.Load(); s != nil && (*s)[site] {
		return site
	}
	return UnknownSite
}

// outcomeLabel admits outcome names that look like code-chosen names, up
// to MaxOutcomes of them.
func (m *Metrics) outcomeLabel(outcome string) string {
	if outcome == "" {
		return NoOutcome
	}
	m.outcomesMu.RLock()
	seen := m.outcomes[outcome]
	m.outcomesMu.RUnlock()
	if seen {
		return outcome
	}
	if !isName(outcome) {
		return Other
	}
	m.outcomesMu.Lock()
	defer m.outcomesMu.Unlock()
	if !m.outcomes[outcome] && len(m.outcomes) >= MaxOutcomes {
		return Other
	}
	m.outcomes[outcome] = true
	return outcome
}

// isName reports whether s is a short snake_case name.
func isName(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func bounded(known map[string]bool, v string) string {
	if known[v] {
		return v
	}
	return Other
}

func set(vs ...string) map[string]bool {
	s := make(map[string]bool, len(vs))
	for _, v := range vs {
		s[v] = true
	}
	return s
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
