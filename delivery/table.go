package delivery

import (
	"maps"
	"slices"
)

// What sites read: short, generic and stable. Nothing internal.
const (
	siteUnreachable = "CRM unreachable, retrying"
	siteBusy        = "CRM busy, retrying"
	siteUnexpected  = "unexpected CRM answer, retrying"
	sitePaused      = "delivery paused until an operator fixes the relay's CRM settings; the lead is kept"
	siteChecking    = "checking whether the CRM already has the lead"
	siteRelay       = "temporary relay problem, retrying"
	siteRetrying    = "delivery failed, retrying"
	siteRejected    = "the CRM rejected the lead; an operator will review it"
	siteGaveUp      = "delivery kept failing; an operator will review the lead"
)

// entry is one code's row of the table: what the failure means, what its
// site reads, what operators read (what happened, then the fix with
// {setting} filled in) and the setting to check.
type entry struct {
	outcome Outcome
	site    string
	what    string
	fix     string
	setting string
}

// table is the one place where a reason becomes words. Chat reads what
// and fix with the code; operators read them with the CRM's own text.
var table = map[Code]entry{
	CRMUnreachable: {Transient, siteUnreachable, "the CRM could not be reached", "", ""},
	CRMTimeout: {Uncertain, siteUnreachable,
		"the CRM did not answer in time; it may have stored the lead, which is looked up before any resend", "", ""},
	CRMErrorPage: {Uncertain, siteUnexpected,
		"the CRM answered with an error page; it may have stored the lead, which is looked up before any resend", "", ""},
	CRMUnexpected:  {Transient, siteUnexpected, "the CRM's answer is not what its API promises", "", ""},
	CRMRejected:    {Final, siteRejected, "the CRM rejected the lead", "", ""},
	CRMRefused:     {Final, siteRejected, "the CRM refused the request", "", ""},
	CRMRateLimited: {Backpressure, siteBusy, "the CRM asked to slow down", "", ""},

	ConfigAPIKey: {Paused, sitePaused, "the CRM rejected the API key", "check {setting}", "LEADRELAY_CRM_APIKEY"},
	ConfigLogin: {Paused, sitePaused, "the CRM does not know the login (or, on v2, the API key)",
		"check {setting}", "LEADRELAY_CRM_LOGIN and LEADRELAY_CRM_APIKEY"},
	ConfigMethod: {Paused, sitePaused, "the CRM does not know the method",
		"check {setting}", "LEADRELAY_CRM_URL and LEADRELAY_CRM_API (v1 or v2)"},
	ConfigNotFound: {Paused, sitePaused, "the CRM address is not found",
		"check {setting} (the CRM root, without /developer/...)", "LEADRELAY_CRM_URL and LEADRELAY_CRM_API"},
	ConfigAccess: {Paused, sitePaused, "the web server in front of the CRM refused access",
		"check {setting} and the server's access rules (IP allow-list, basic auth)", "LEADRELAY_CRM_URL"},
	ConfigPost: {Paused, sitePaused, "the server does not accept POST at this address", "check {setting}", "LEADRELAY_CRM_URL"},
	ConfigRedirect: {Paused, sitePaused, "the CRM address redirects",
		"set {setting} to the final address", "LEADRELAY_CRM_URL"},
	ConfigHTTP: {Paused, sitePaused, "the CRM address answers with an HTTP error", "check {setting}", "LEADRELAY_CRM_URL"},
	ConfigV1Broken: {Paused, sitePaused,
		"the CRM's v1 add/info is broken on this SalesMan version (HTTP 500 or a PHP error while stat works)",
		"set {setting}=v2", "LEADRELAY_CRM_API"},
	Config: {Paused, sitePaused, "the CRM settings are wrong",
		"check {setting}", "LEADRELAY_CRM_URL, LEADRELAY_CRM_LOGIN, LEADRELAY_CRM_APIKEY and LEADRELAY_CRM_API"},

	CircuitOpen: {Backpressure, siteBusy,
		"the CRM failed repeatedly: its circuit is open and deliveries wait without spending attempts",
		"the wait is {setting}", "LEADRELAY_BREAKER_COOLDOWN"},
	RateLimit: {Backpressure, siteBusy, "LeadRelay's CRM rate limit", "set by {setting}", "LEADRELAY_CRM_RATE_LIMIT"},
	ConcurrencyCap: {Backpressure, siteBusy, "LeadRelay's cap on CRM requests in flight",
		"set by {setting}", "LEADRELAY_CRM_MAX_CONCURRENT"},
	CRMPause: {Backpressure, siteBusy, "the CRM asked to wait (Retry-After); the fleet pauses", "", ""},
	LockBusy: {Backpressure, siteBusy, "another worker is delivering this lead", "", ""},
	LookUpWait: {Backpressure, siteChecking,
		"an earlier add may still commit: the look-up waits until it cannot", "set by {setting}", "LEADRELAY_RECONCILE_AFTER"},
	JournalWait: {Backpressure, siteChecking, "a v1 send waits for the CRM journal's refresh", "", ""},
	LookUpFailed: {Backpressure, siteChecking,
		"the look-up of an earlier uncertain add could not finish", "", ""},
	LookUpUnknown: {Final, siteGaveUp, "LeadRelay could not tell whether the CRM stored the lead",
		"dead-lettered as {setting}=dead asks", "LEADRELAY_RECONCILE_UNKNOWN"},
	MarkerNotRecorded: {Backpressure, siteChecking,
		"the CRM has the lead but the delivered marker could not be recorded; the next run looks it up", "", ""},
	StaleMarker: {Backpressure, siteRetrying,
		"a delivered marker of other content (a reused idempotency key) was dropped; the lead goes as a new one", "", ""},
	Replicas: {Backpressure, siteRelay, "Redis replicas did not confirm the attempt record",
		"see {setting}", "LEADRELAY_REDIS_WAIT_REPLICAS"},
	KeyMissing: {Backpressure, siteRelay, "the lead is sealed under a data key this worker does not hold",
		"add the key to {setting} (every worker opens with every key listed)", "LEADRELAY_DATA_KEYS"},
	Store: {Backpressure, siteRelay, "LeadRelay's Redis bookkeeping failed", "", ""},
	LeaseExpired: {Backpressure, siteRetrying,
		"the worker running the lead stopped answering (asynq's lease expired); asynq runs it again", "", ""},
	PayloadBroken: {Final, siteGaveUp, "the task's payload is not a lead", "", ""},
	RetriesExhausted: {Final, siteGaveUp, "retries exhausted",
		"the budget is {setting}", "LEADRELAY_MAX_RETRY"},
	Unexpected: {Final, siteGaveUp, "an unexpected error", "", ""},
	Unrecorded: {Transient, siteRetrying, "the failure was not recorded (a worker of the previous version ran the lead)", "", ""},
	Legacy:     {Final, siteGaveUp, "as the previous version recorded it", "", ""},
	RecordedLate: {Final, siteGaveUp,
		"recorded after the fact, reason unknown: asynq archived the lead while its dead-letter record could not be written", "", ""},
}

// entryOf is c's row; a code this version does not know (a newer
// version's) reads as its name and postpones.
func entryOf(c Code) entry {
	if e, ok := table[c]; ok {
		return e
	}
	return entry{outcome: Backpressure, site: siteRetrying, what: string(c)}
}

// Outcome is what a run that failed for c means: every code has one, so
// the worker decides from the code alone. No code is None; an unknown
// code postpones.
func (c Code) Outcome() Outcome {
	if c == "" {
		return None
	}
	return entryOf(c).outcome
}

// Known reports whether c is a code of this version.
func (c Code) Known() bool {
	_, ok := table[c]
	return ok
}

// Codes returns every code, sorted.
func Codes() []Code {
	return slices.Sorted(maps.Keys(table))
}
