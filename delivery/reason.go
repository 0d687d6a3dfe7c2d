package delivery

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Code says why a run failed, a lead died or deliveries pause. Codes are
// stable: they are stored in Redis (attempt records, dead letters, the
// circuit) and shown in APIs, metrics and chat. The zero value is no
// reason.
type Code string

// Failures of the CRM call itself (crmclient.Diagnose decides them).
const (
	// CRMUnreachable: nothing reached the CRM, or its web server answered
	// that it cannot serve now (HTTP 503 and the like).
	CRMUnreachable Code = "crm_unreachable"
	// CRMTimeout: an add was sent and got no answer in time (or a gateway
	// timed out); the CRM may still store it.
	CRMTimeout Code = "crm_timeout"
	// CRMErrorPage: an add got a complete answer that does not say whether
	// the lead was stored (HTTP 500 or 502, a PHP error page).
	CRMErrorPage Code = "crm_error_page"
	// CRMUnexpected: a read got an answer that is not what the API
	// promises (not JSON, a PHP error page).
	CRMUnexpected Code = "crm_unexpected"
	// CRMRejected: the CRM said it could not insert the lead.
	CRMRejected Code = "crm_rejected"
	// CRMRefused: the CRM refused the request with an error of its own.
	CRMRefused Code = "crm_refused"
	// CRMRateLimited: the CRM or a proxy asked to slow down (HTTP 429).
	CRMRateLimited Code = "crm_rate_limited"
)

// Configuration problems: every request fails until an operator fixes a
// setting; deliveries pause without spending attempts.
const (
	// ConfigAPIKey: the CRM rejected the API key (CRM code 400).
	ConfigAPIKey Code = "config_api_key"
	// ConfigLogin: the CRM does not know the login (CRM code 401; on v2
	// also a wrong API key).
	ConfigLogin Code = "config_login"
	// ConfigMethod: the CRM does not know the method (CRM code 402).
	ConfigMethod Code = "config_method"
	// ConfigNotFound: the address answers HTTP 404.
	ConfigNotFound Code = "config_not_found"
	// ConfigAccess: the web server in front of the CRM refused access
	// (HTTP 401 or 403).
	ConfigAccess Code = "config_access"
	// ConfigPost: the server does not accept POST there (HTTP 405).
	ConfigPost Code = "config_post"
	// ConfigRedirect: the address redirects; Detail holds the target.
	ConfigRedirect Code = "config_redirect"
	// ConfigHTTP: another HTTP status that says the address is wrong.
	ConfigHTTP Code = "config_http"
	// ConfigV1Broken: this SalesMan's v1 add/info fails while stat works.
	ConfigV1Broken Code = "config_v1_broken"
	// Config: the CRM settings are wrong in a way no other code names.
	Config Code = "config"
)

// LeadRelay's own reasons.
const (
	// CircuitOpen: the CRM failed repeatedly; the fleet's circuit is open
	// (or half-open with another worker probing).
	CircuitOpen Code = "circuit_open"
	// RateLimit: LeadRelay's fleet-wide CRM rate limit.
	RateLimit Code = "rate_limit"
	// ConcurrencyCap: LeadRelay's fleet-wide cap on CRM requests in
	// flight (or its wait ran out).
	ConcurrencyCap Code = "concurrency_cap"
	// CRMPause: the fleet waits out a CRM's Retry-After.
	CRMPause Code = "crm_pause"
	// LockBusy: another worker is delivering this lead.
	LockBusy Code = "lock_busy"
	// LookUpWait: an earlier add may still commit; the look-up waits.
	LookUpWait Code = "look_up_wait"
	// JournalWait: a v1 send waits for the CRM journal's refresh.
	JournalWait Code = "journal_wait"
	// LookUpFailed: the look-up of an earlier uncertain add could not
	// finish.
	LookUpFailed Code = "look_up_failed"
	// LookUpUnknown: a look-up could not tell whether the CRM stored the
	// lead, and LEADRELAY_RECONCILE_UNKNOWN=dead.
	LookUpUnknown Code = "look_up_unknown"
	// MarkerNotRecorded: the CRM has the lead but the delivered marker
	// could not be written; the next run looks the lead up.
	MarkerNotRecorded Code = "marker_not_recorded"
	// StaleMarker: a delivered marker of other content (a reused
	// idempotency key) was dropped; the lead goes as a new one.
	StaleMarker Code = "stale_marker"
	// Replicas: Redis replicas did not confirm the attempt record.
	Replicas Code = "replicas"
	// Store: LeadRelay's own Redis bookkeeping failed.
	Store Code = "store"
	// LeaseExpired: the worker running the lead stopped answering
	// (asynq's lease expired) and asynq runs it again. The worker's
	// trouble, not the lead's: it spends no attempt (see the package doc,
	// "The spare run").
	LeaseExpired Code = "lease_expired"
	// KeyMissing: the lead is sealed under a data key the worker does not
	// hold; it waits, unspent, until the key is configured.
	KeyMissing Code = "key_missing"
	// PayloadBroken: the task's payload is not a lead.
	PayloadBroken Code = "payload_broken"
	// RetriesExhausted: the lead's attempts are spent; Last names the
	// last failure, whose parameters the reason keeps.
	RetriesExhausted Code = "retries_exhausted"
	// Unexpected: an error nothing classifies.
	Unexpected Code = "unexpected"
	// Unrecorded: a failure whose reason was not recorded (a worker of
	// the previous version ran the lead).
	Unrecorded Code = "unrecorded"
	// Legacy: a reason the previous version recorded as prose; Detail
	// holds it.
	Legacy Code = "legacy"
	// RecordedLate: asynq archived the lead while its dead-letter record
	// could not be written (Redis was down), and the lead's attempt
	// record holds no reason; the dead-letter sweep recorded it after the
	// fact.
	RecordedLate Code = "recorded_late"
)

// Reason is why a run failed, a lead died or deliveries pause: a Code and
// its parameters, never a sentence. Text renders it for each Audience.
// The zero value is no reason.
type Reason struct {
	// Code says why.
	Code Code `json:"code"`
	// CRMCode is the CRM's own error code, 0 when none.
	CRMCode int `json:"crm_code,omitempty"`
	// HTTPStatus is the HTTP status of the answer, 0 when none.
	HTTPStatus int `json:"http_status,omitempty"`
	// Setting names the setting to check where the code's own does not
	// fit; empty uses the code's.
	Setting string `json:"setting,omitempty"`
	// Last is the code of the last failure, for RetriesExhausted.
	Last Code `json:"last,omitempty"`
	// Detail is the CRM's own text, a redirect's target or, for Legacy,
	// the previous version's sentence: for operators only, never sites
	// or chat. It never holds the CRM key.
	Detail string `json:"detail,omitempty"`
}

// IsZero reports whether r is no reason.
func (r Reason) IsZero() bool { return r == Reason{} }

// Outcome is what a run that failed for r means (see Code.Outcome).
func (r Reason) Outcome() Outcome { return r.Code.Outcome() }

// Exhausted is RetriesExhausted with r as the last failure.
func (r Reason) Exhausted() Reason {
	if r.Code == RetriesExhausted {
		return r
	}
	r.Last, r.Code = r.Code, RetriesExhausted
	return r
}

// String is the operators' text, for logs and errors.
func (r Reason) String() string { return r.Text(Operators) }

// Audience is who reads a reason.
type Audience int

// The audiences of Reason.Text.
const (
	// Sites read a short, generic, stable sentence: nothing internal (no
	// addresses, settings or CRM texts).
	Sites Audience = iota
	// Operators read what happened precisely, the setting to fix, and the
	// CRM's own text where there is one.
	Operators
	// Chat is what notifications carry: the code, its parameters and the
	// fix, without the CRM's text.
	Chat
)

// Text renders r for a. The zero Reason renders as "".
func (r Reason) Text(a Audience) string {
	if r.Code == "" {
		return ""
	}
	e := entryOf(r.Code)
	switch a {
	case Sites:
		return e.site
	case Chat:
		return r.chat(e)
	}
	return r.operator(e)
}

func (r Reason) operator(e entry) string {
	var b strings.Builder
	b.WriteString(e.what)
	if r.Code != RetriesExhausted || r.Last == "" {
		r.params(&b) // else they are the last failure's, written with it
	}
	if fix := r.fix(e); fix != "" {
		b.WriteString(": ")
		b.WriteString(fix)
	}
	if r.Code == RetriesExhausted && r.Last != "" {
		b.WriteString("; the last failure: ")
		last := r
		last.Code, last.Last, last.Detail = r.Last, "", ""
		b.WriteString(last.operator(entryOf(r.Last)))
	}
	if r.Detail != "" {
		b.WriteString(": ")
		b.WriteString(r.Detail)
	}
	return b.String()
}

func (r Reason) chat(e entry) string {
	var b strings.Builder
	b.WriteString(e.what)
	b.WriteString(" [")
	b.WriteString(string(r.Code))
	if r.Code == RetriesExhausted && r.Last != "" {
		b.WriteString(", last ")
		b.WriteString(string(r.Last))
	}
	b.WriteString("]")
	r.params(&b)
	if fix := r.fix(e); fix != "" {
		b.WriteString(": ")
		b.WriteString(fix)
	}
	return b.String()
}

// params writes the CRM code and HTTP status, if any.
func (r Reason) params(b *strings.Builder) {
	if r.CRMCode != 0 {
		b.WriteString(" (CRM code ")
		b.WriteString(strconv.Itoa(r.CRMCode))
		b.WriteString(")")
	}
	if r.HTTPStatus != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(r.HTTPStatus))
		b.WriteString(")")
	}
}

// fix is the entry's fix with the setting to check filled in.
func (r Reason) fix(e entry) string {
	setting := r.Setting
	if setting == "" {
		setting = e.setting
	}
	if e.fix == "" {
		return ""
	}
	return strings.ReplaceAll(e.fix, "{setting}", setting)
}

// UnmarshalJSON reads a reason as Marshal writes it, and also a JSON
// string, the sentence the previous version stored: that becomes Legacy
// with the sentence as its Detail.
func (r *Reason) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*r = Reason{}
		if s != "" {
			*r = Reason{Code: Legacy, Detail: s}
		}
		return nil
	}
	type plain Reason // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = Reason(p)
	return nil
}

// ParseReason reads a reason stored as JSON; anything else (the previous
// version's sentence) is Legacy with the text as its Detail, and "" is no
// reason.
func ParseReason(s string) Reason {
	if s == "" {
		return Reason{}
	}
	var r Reason
	if strings.HasPrefix(s, "{") && json.Unmarshal([]byte(s), &r) == nil && r.Code != "" {
		return r
	}
	return Reason{Code: Legacy, Detail: s}
}

// Encode is r as JSON, as attempt records and the circuit store it; "" for
// the zero Reason.
func (r Reason) Encode() string {
	if r.IsZero() {
		return ""
	}
	b, _ := json.Marshal(r) // a struct of strings and ints always encodes
	return string(b)
}
