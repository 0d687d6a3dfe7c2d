package crmsim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("250ms"); a JSON number is read as nanoseconds.
type Duration time.Duration

// MarshalJSON writes d as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "1.5s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration must be a string like \"250ms\" or nanoseconds, got %s", b)
	}
	*d = Duration(n)
	return nil
}

// Outage modes.
const (
	OutageHTTP503 = "503"    // answer 503 with an empty body
	OutageRefuse  = "refuse" // refuse connections (Server) or drop them unanswered (handler)
)

// Outage takes the CRM down. It lasts until Until, or for For from the
// moment it is set; with neither it lasts until the faults are replaced.
type Outage struct {
	Mode  string    `json:"mode,omitempty"` // "503" (default) or "refuse"
	Until time.Time `json:"until,omitzero"`
	For   Duration  `json:"for,omitempty"`
}

// Faults are injected failures. The zero value injects nothing. Rates are
// fractions in [0, 1] of API requests (admin endpoints are never faulted),
// drawn from the Sim's seeded random source. Checks run in this order:
// Outage, Latency, RateLimit429, ErrorRate, FatalRate, AuthFail, then the
// action (V1Shipped, RejectMarker, AmbiguousRate).
type Faults struct {
	// ErrorRate answers this fraction with HTTP ErrorStatus and an empty body; nothing is stored.
	ErrorRate float64 `json:"error_rate,omitempty"`
	// ErrorStatus is 500 or 503; 0 = 500. Without an ErrorRate it is
	// dropped: it injects nothing.
	ErrorStatus int `json:"error_status,omitempty"`
	// Latency is added before every API answer.
	Latency Duration `json:"latency,omitempty"`
	// Outage, when set and not over, takes the API down.
	Outage *Outage `json:"outage,omitempty"`
	// AmbiguousRate stores this fraction of successful adds and then closes
	// the connection without an answer.
	AmbiguousRate float64 `json:"ambiguous_rate,omitempty"`
	// FatalRate answers this fraction with HTTP 200 and a PHP fatal-error
	// HTML body; nothing is stored.
	FatalRate float64 `json:"fatal_rate,omitempty"`
	// V1Shipped makes v1 behave as shipped today: add and info answer a PHP
	// fatal (require_once failed) and store nothing; list ignores every
	// parameter and returns the newest 200.
	V1Shipped bool `json:"v1_shipped,omitempty"`
	// AuthFail answers every API request as a wrong key (v1 400, v2 401).
	AuthFail bool `json:"auth_fail,omitempty"`
	// RejectMarker, when not empty, fails every add whose title,
	// description or email contains it with the add error (code 1).
	RejectMarker string `json:"reject_marker,omitempty"`
	// PoisonMarker, when not empty, answers every add whose title,
	// description or email contains it with HTTP 500 and an empty body,
	// storing nothing: a lead that always meets a PHP fatal, while the
	// others go through.
	PoisonMarker string `json:"poison_marker,omitempty"`
	// RateLimit429 answers this fraction with HTTP 429 and Retry-After: 1.
	RateLimit429 float64 `json:"rate_limit_429,omitempty"`

	// FatalStyle is how PHP fatals (FatalRate, V1Shipped, v1's quote in
	// the API log, an unknown order column) come back: FatalHTML (""),
	// FatalEmpty500 or FatalCRM.
	FatalStyle string `json:"fatal_style,omitempty"`
	// V1ListIgnoresParams makes v1 list ignore every parameter and return
	// the newest 200, as shipped, while v1 add keeps working.
	V1ListIgnoresParams bool `json:"v1_list_ignores_params,omitempty"`

	// StampGap makes v2 add non-atomic like the running CRM: the lead row
	// is stored (and listed) at once, its uids only after this gap (the
	// CRM's blocking call to its own webhooks, up to 5 s). The gap runs
	// even when the client has gone away.
	StampGap Duration `json:"stamp_gap,omitempty"`
	// StampKillRate kills this fraction of v2 adds that carry uids inside
	// that gap: the lead stays stored without its uids, forever, and the
	// connection is dropped unanswered.
	StampKillRate float64 `json:"stamp_kill_rate,omitempty"`

	// LateCommitRate makes this fraction of adds (v1 and v2) work for
	// LateCommitDelay before storing the lead, whether or not the client
	// is still waiting: with a client timeout below that delay the client
	// sees a timeout, and the lead is stored afterwards.
	LateCommitRate float64 `json:"late_commit_rate,omitempty"`
	// LateCommitDelay is that work time; 0 = 35s (beyond LeadRelay's
	// default 30s CRM timeout).
	LateCommitDelay Duration `json:"late_commit_delay,omitempty"`

	// PHPWorkers, when above 0, serves the API with that many PHP workers
	// like the CRM's PHP server: a request beyond the pool waits for a free
	// worker and holds it until answered (Latency included). A v2 add's
	// call to the CRM's own webhooks needs a worker too: while every
	// worker is busy it waits up to WebhookStall, so more concurrent adds
	// than workers collapse the throughput instead of queueing. 0 = no pool.
	// PHP's built-in server started with PHP_CLI_SERVER_WORKERS=N serves
	// with N+1 processes (its master serves too) and was measured to
	// collapse from N+2 concurrent adds on: use N+2 to stand in for it.
	PHPWorkers int `json:"php_workers,omitempty"`
	// CPUs, when above 0, makes Latency CPU time shared by the API requests
	// at work: with n of them at work when a request starts, its Latency
	// takes Latency×n/CPUs (n > CPUs), so latency grows with concurrency
	// as on the real CRM's two cores. 0 = Latency is a fixed sleep.
	CPUs int `json:"cpus,omitempty"`
	// WebhookStall bounds that wait (the CRM's 5 s curl timeout); 0 = 5s.
	WebhookStall Duration `json:"webhook_stall,omitempty"`
	// WebhookTime is how long the webhook call holds a worker once it got
	// one; 0 = 2ms.
	WebhookTime Duration `json:"webhook_time,omitempty"`
}

// Fatal styles for Faults.FatalStyle.
const (
	// FatalHTML answers HTTP 200 with PHP's HTML error page (display_errors on).
	FatalHTML = "html"
	// FatalEmpty500 answers HTTP 500 with an empty body (display_errors off).
	FatalEmpty500 = "empty500"
	// FatalCRM is the running CRM: display_errors is off (the CRM's
	// .htaccess), so v1 fatals are HTTP 500 with an empty body, but v2's
	// lead.php turns it back on, so v2 fatals are the HTML page.
	FatalCRM = "crm"
)

// Defaults of the duration faults whose zero value means "the default".
const (
	defaultLateCommitDelay = 35 * time.Second
	defaultWebhookStall    = 5 * time.Second
	defaultWebhookTime     = 2 * time.Millisecond
)

func orDefault(d Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}

// emptyFatal reports whether a PHP fatal in api answers HTTP 500 with an
// empty body rather than the HTML page.
func (f Faults) emptyFatal(api string) bool {
	return f.FatalStyle == FatalEmpty500 || f.FatalStyle == FatalCRM && api == APIv1
}

// Validate reports the first invalid field.
func (f Faults) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_rate", f.ErrorRate}, {"ambiguous_rate", f.AmbiguousRate}, {"fatal_rate", f.FatalRate}, {"rate_limit_429", f.RateLimit429},
		{"stamp_kill_rate", f.StampKillRate}, {"late_commit_rate", f.LateCommitRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("faults: %s must be between 0 and 1, got %v", r.name, r.v)
		}
	}
	if f.ErrorStatus != 0 && f.ErrorStatus != 500 && f.ErrorStatus != 503 {
		return fmt.Errorf("faults: error_status must be 500 or 503, got %d", f.ErrorStatus)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"latency", f.Latency}, {"stamp_gap", f.StampGap}, {"late_commit_delay", f.LateCommitDelay},
		{"webhook_stall", f.WebhookStall}, {"webhook_time", f.WebhookTime}} {
		if d.v < 0 {
			return fmt.Errorf("faults: %s must not be negative, got %s", d.name, time.Duration(d.v))
		}
	}
	switch f.FatalStyle {
	case "", FatalHTML, FatalEmpty500, FatalCRM:
	default:
		return fmt.Errorf("faults: fatal_style must be %q, %q or %q, got %q", FatalHTML, FatalEmpty500, FatalCRM, f.FatalStyle)
	}
	if f.PHPWorkers < 0 {
		return fmt.Errorf("faults: php_workers must not be negative, got %d", f.PHPWorkers)
	}
	if f.CPUs < 0 {
		return fmt.Errorf("faults: cpus must not be negative, got %d", f.CPUs)
	}
	if o := f.Outage; o != nil {
		if o.Mode != "" && o.Mode != OutageHTTP503 && o.Mode != OutageRefuse {
			return fmt.Errorf("faults: outage.mode must be %q or %q, got %q", OutageHTTP503, OutageRefuse, o.Mode)
		}
		if o.For < 0 {
			return fmt.Errorf("faults: outage.for must not be negative")
		}
	}
	return nil
}

// normalize clamps rates, fills defaults and turns Outage.For into Until.
func (f Faults) normalize(now time.Time) Faults {
	clamp := func(v float64) float64 {
		if !(v > 0) {
			return 0
		}
		return min(v, 1)
	}
	f.ErrorRate, f.AmbiguousRate = clamp(f.ErrorRate), clamp(f.AmbiguousRate)
	f.FatalRate, f.RateLimit429 = clamp(f.FatalRate), clamp(f.RateLimit429)
	switch {
	case f.ErrorRate == 0:
		f.ErrorStatus = 0 // no errors to answer: Faults shows only what is in force
	case f.ErrorStatus != 503:
		f.ErrorStatus = 500
	}
	f.StampKillRate, f.LateCommitRate = clamp(f.StampKillRate), clamp(f.LateCommitRate)
	f.Latency, f.StampGap = max(f.Latency, 0), max(f.StampGap, 0)
	f.PHPWorkers, f.CPUs = max(f.PHPWorkers, 0), max(f.CPUs, 0)
	if f.Outage != nil {
		o := *f.Outage
		if o.Mode != OutageRefuse {
			o.Mode = OutageHTTP503
		}
		if o.Until.IsZero() && o.For > 0 {
			o.Until = now.Add(time.Duration(o.For))
		}
		f.Outage = &o
	}
	return f
}

// OutageActive reports whether an outage is in force at now, and its mode.
func (f Faults) OutageActive(now time.Time) (string, bool) {
	if f.Outage == nil {
		return "", false
	}
	if !f.Outage.Until.IsZero() && !now.Before(f.Outage.Until) {
		return "", false
	}
	return f.Outage.Mode, true
}

// SetFaults replaces the active faults. Rates are clamped to [0, 1]; an
// Outage with For (and no Until) starts now. Use Faults.Validate to reject
// bad input instead.
func (s *Sim) SetFaults(f Faults) {
	f = f.normalize(time.Now())
	s.mu.Lock()
	s.faults = f
	watchers := s.watchers
	s.mu.Unlock()
	s.pool.setLimit(f.PHPWorkers)
	for _, c := range watchers {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	if ce := s.log.Check(zap.InfoLevel, "crmsim faults set"); ce != nil {
		b, _ := json.Marshal(f)
		ce.Write(zap.String("faults", s.redact(string(b))))
	}
}

// Faults returns the active faults.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	if f.Outage != nil {
		o := *f.Outage
		f.Outage = &o
	}
	return f
}

// watchFaults returns a channel signalled (coalesced) after each SetFaults.
func (s *Sim) watchFaults() chan struct{} {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers = append(s.watchers, c)
	s.mu.Unlock()
	return c
}

func (s *Sim) unwatchFaults(c chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchers = slices.DeleteFunc(s.watchers, func(x chan struct{}) bool { return x == c })
}

// draws are the random decisions for one request, taken together under the
// lock so a seed gives the same faults for the same request sequence.
type draws struct {
	rateLimit, serverError, fatal, ambiguous bool
	stampKill, lateCommit                    bool
}

func (s *Sim) draw(f Faults, isAdd bool) draws {
	s.mu.Lock()
	defer s.mu.Unlock()
	hit := func(rate float64) bool { return rate > 0 && (rate >= 1 || s.rng.Float64() < rate) }
	d := draws{
		rateLimit:   hit(f.RateLimit429),
		serverError: hit(f.ErrorRate),
		fatal:       hit(f.FatalRate),
	}
	if isAdd {
		d.ambiguous = hit(f.AmbiguousRate)
		d.stampKill = hit(f.StampKillRate)
		d.lateCommit = hit(f.LateCommitRate)
	}
	return d
}

// PHP fatal bodies. The CRM prints them with HTTP 200 when display_errors
// is on; see Faults.FatalStyle.
const (
	fatalBody = "<br />\n<b>Fatal error</b>:  Uncaught Error: Call to a member function getRow() on null in " +
		"<b>/var/www/salesman/inc/class/Leads.php</b> on line <b>417</b><br />\n"
	v1ShippedFatal = "<br />\n<b>Fatal error</b>:  require_once(): Failed opening required " +
		"'/var/www/salesman/inc/class/Leads.php' (include_path='.:/usr/share/php') in " +
		"<b>/var/www/salesman/developer/v1/leads.php</b> on line <b>12</b><br />\n"
	quoteFatal = "<br />\n<b>Fatal error</b>:  Uncaught mysqli_sql_exception: You have an error in your SQL syntax; " +
		"check the manual that corresponds to your MariaDB server version for the right syntax to use near '' " +
		"at line 1 in <b>/var/www/salesman/developer/v1/logger.php</b> on line <b>31</b><br />\n"
)
