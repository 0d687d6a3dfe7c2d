package rdb

// Every Redis key LeadRelay writes for a lead's delivery is built here and
// nowhere else (docs/redis-keys.md lists them with their slots).

import (
	"strconv"
	"strings"
)

//
// Keys of one lead share the hash tag {lead id}, so one script may touch
// them all on a Redis Cluster. Fleet-wide keys (circuit, claims, journal,
// counters, backlog sets) carry tags of their own and are touched by their
// own commands, pipelined with a lead's script where a round trip matters.

// Prefix starts every key of LeadRelay's own.
const Prefix = "leadrelay:"

// LeadKey is the admission record of a lead (hash: site, sum, at) as the
// previous version wrote it at intake. It is read, never written, for one
// version: a queued lead needs no record beside its task (the task's
// payload names its site and digest), and a delivered one has its marker.
func LeadKey(id string) string { return Prefix + "{" + id + "}:lead" }

// DeliveredKey is the delivered marker (JSON Marker): the CRM holds the lead.
func DeliveredKey(id string) string { return Prefix + "{" + id + "}:delivered" }

// LockKey is the single-flight lock of a lead's delivery (a token).
func LockKey(id string) string { return Prefix + "{" + id + "}:lock" }

// AttemptKey is the delivery record of a lead (hash; see Attempt).
func AttemptKey(id string) string { return Prefix + "{" + id + "}:attempt" }

// RepeatsKey counts the keyless repeats of a lead: the times its site
// sent the same content again, without a key, within the keyless window
// (a string counter).
func RepeatsKey(id string) string { return Prefix + "{" + id + "}:repeats" }

// TimelineKey is a lead's timeline: one entry per run (a list, oldest
// first, of at most TimelineCap; see RecordRun).
func TimelineKey(id string) string { return Prefix + "{" + id + "}:runs" }

// LegacyDeliveredKey is the delivered marker as the previous version wrote
// it (no hash tag). It is read and written alongside DeliveredKey on a
// single primary for one version, so old and new workers can drain one
// queue; on a Cluster, which the old version never supported, it is unused.
func LegacyDeliveredKey(id string) string { return Prefix + "delivered:" + id }

// LegacyOwnerKey is the previous version's record of a lead's site, read
// (never written) for one version so status reads of older leads work.
func LegacyOwnerKey(id string) string { return Prefix + "owner:" + id }

// Fleet-wide keys.
const (
	// WorkersKey lists the worker processes of this version (hash
	// "host:pid" → expiry ms), so a worker can tell whether processes of
	// the previous version serve the same queue: asynq lists every server,
	// and one it lists that is not here is an older worker.
	WorkersKey = Prefix + "{fleet}:workers"
	// SealersKey lists the worker processes that open sealed lead
	// payloads (hash "host:pid" → expiry ms): a producer seals a lead only
	// while every asynq server of the queue is listed here, so no worker
	// of a version before sealing, nor one run without data keys, is
	// handed a lead it cannot read.
	SealersKey = Prefix + "{fleet}:sealers"
	// EpochKey is the fleet epoch (a counter): every worker increments it
	// every few seconds and remembers what it counted, so a Redis that
	// comes back lower (an older snapshot, a lagging replica promoted)
	// tells them it forgot writes (EpochCheck).
	EpochKey = Prefix + "{fleet}:epoch"
	// RollbackKey holds when a worker found Redis rolled back (ms), for
	// worker.RollbackGuard: every worker looks a lead received before it
	// up before adding it.
	RollbackKey = Prefix + "{fleet}:rollback"
	// BreakerKey is the CRM circuit and the CRM's health as the fleet knows
	// it (hash: failures, open_until, probe_until, problem, problem_at).
	BreakerKey = Prefix + "{crm}:breaker"
	// CRMWorkedKey counts the working CRM calls that cleared the circuit's
	// failures (a counter): the CRM worked for someone since a lead failed
	// when it grew.
	CRMWorkedKey = Prefix + "{crm}:worked"
	// CRMLeadFailsKey remembers the leads whose CRM call failed (hash: lead
	// id → CRMWorkedKey's count at the failure the circuit counted), so a
	// lead that fails again after the CRM worked for others is told from a
	// CRM that fails (circuit_fail).
	CRMLeadFailsKey = Prefix + "{crm}:lead_fails"
	// JournalItemsKey and JournalMetaKey keep the CRM's newest leads as
	// LeadRelay last listed them (v1 reconcile): items is a sorted set by
	// CRM id of "id|datum ms|fingerprint", meta a hash of from, max (the
	// CRM ids between which the journal is gapless), seq (sends so far)
	// and seen (seq when the latest merged page was listed).
	JournalItemsKey = Prefix + "{crm:journal}:items"
	JournalMetaKey  = Prefix + "{crm:journal}:meta"
	// AuditTurnKey is taken (SET NX) by the process whose turn it is to
	// audit the CRM (package audit), for one interval.
	AuditTurnKey = Prefix + "{audit}:turn"
	// AuditFindsKey records what audits found (hash "kind:id" → first
	// sighting ms): d:<crm id> a duplicate, m:<lead id> a delivered lead
	// missing from the CRM, s:<crm id> a content match still to settle.
	AuditFindsKey = Prefix + "{audit}:finds"
	// AuditLastKey is the latest audit's report (JSON), for ctl and the
	// ops listener.
	AuditLastKey = Prefix + "{audit}:last"
)

// BacklogKey counts the undelivered leads of each site of a queue (hash:
// site → count). It carries the queue's hash tag, as asynq's own keys of
// that queue do, so one script reads asynq's queue sizes (the global
// backlog, exact) and changes a site's count on a Redis Cluster too.
func BacklogKey(queue string) string { return Prefix + "{" + queue + "}:backlog" }

// KeptKey is the bytes site keeps in Redis through queue (hash: time
// bucket → bytes admitted in it), its share of Redis's memory, charged at
// admission and forgotten once the leads could no longer be kept
// (reserve). It carries the queue's hash tag, so the admission script
// reads and charges it on a Redis Cluster too.
func KeptKey(queue, site string) string { return Prefix + "{" + queue + "}:kept:" + site }

// StripCursorKey is how far the sweep of queue's completed tasks has read
// (Store.StripCursor: "<second> <skip>", the second their retention
// ends). It carries the queue's hash tag, as asynq's completed set of that
// queue does, and expires at that second, when every task it covers has
// expired too.
func StripCursorKey(queue string) string { return Prefix + "{" + queue + "}:strip:cursor" }

// asynqPrefix starts asynq's keys of a queue, as asynq's internal/base
// names them; TestAsynqQueueKeys holds them to asynq's own counts.
func asynqPrefix(queue string) string { return "asynq:{" + queue + "}:" }

// asynqQueueKeys are asynq's lists and sets of a queue's undelivered tasks
// (pending, active, scheduled, retry).
func asynqQueueKeys(queue string) []string {
	p := asynqPrefix(queue)
	return []string{p + "pending", p + "active", p + "scheduled", p + "retry"}
}

// asynqCompletedKey is asynq's sorted set of a queue's completed tasks,
// each scored by the Unix second its retention ends.
func asynqCompletedKey(queue string) string { return asynqPrefix(queue) + "completed" }

// AsynqTaskKey is asynq's hash of a task (a lead's task id is the lead id).
func AsynqTaskKey(queue, id string) string { return asynqPrefix(queue) + "t:" + id }

// WakeChannel is the Pub/Sub channel (not a key) on which the producer
// wakes the idle workers of queue after an enqueue. It carries the
// queue's hash tag, as the queue's keys do.
func WakeChannel(queue string) string { return Prefix + "{" + queue + "}:wake" }

// WaitSeqKey is a counter written just before a WAIT, so the WAIT has a
// write of its own connection to count (see Store.Sync).
const WaitSeqKey = Prefix + "wait:seq"

// ClaimsKey records which lead the CRM lead ids of one bucket belong to
// (hash CRM id → lead id), so a reconcile never takes one CRM lead for two
// relay leads. A bucket holds claimsPerBucket consecutive ids: small
// hashes Redis packs into ~30 B per entry, where a key per id took ~150 B.
// Each bucket has its own hash tag.
func ClaimsKey(crmID int64) string {
	return Prefix + "crm:claims:{" + strconv.FormatInt(crmID/claimsPerBucket, 10) + "}"
}

// claimsPerBucket keeps a claims bucket below Redis's default
// hash-max-listpack-entries (128).
const claimsPerBucket = 100

// LegacyClaimKey is the claim as the version before wrote it (a string
// per CRM id), read by a look-up for as long as it may live (7 days).
func LegacyClaimKey(crmID int64) string { return Prefix + "crm:claim:" + strconv.FormatInt(crmID, 10) }

// KeylessKey is the identity of a lead that site sent without an
// idempotency key, for its window (hash: id, repeats), by its content's
// keyed name (lead.IDKey.Keyless): "leadrelay:keyless:<site>:keyless:<hmac>".
// (Until ids were keyed, the name was the plain digest's key,
// "sha256:<digest>".)
func KeylessKey(site, name string) string { return Prefix + "keyless:" + site + ":" + name }

// KeylessRepeatsKey counts, per site, the keyless repeats of a UTC day
// (YYYY-MM-DD): the same content within its keyless window, answered as a
// new lead and kept as one (hash site → count), kept 8 days.
func KeylessRepeatsKey(day string) string { return Prefix + "stats:keyless_repeats:" + day }

// DeliveredCountKey is the counter of leads delivered on a UTC day
// (YYYY-MM-DD), kept 8 days, which `ctl queues` reports.
func DeliveredCountKey(day string) string { return Prefix + "stats:delivered:" + day }

// DeliveredSitesKey counts the leads of each site delivered on a UTC day
// (hash: site → count), kept as long as DeliveredCountKey, for the ops
// page.
func DeliveredSitesKey(day string) string { return DeliveredCountKey(day) + ":sites" }

// LastDeliveredKey is when each site's lead was last delivered (hash:
// site → ms since the epoch), for the ops page. It holds one field per
// site that ever had a delivery, and no expiry.
const LastDeliveredKey = Prefix + "stats:last_delivered"

// Keys of the fleet-wide CRM limiter, touched together by its one script,
// so they share the tag {crm:limit}.
const (
	// CRMRateKey holds the rate limit's state.
	CRMRateKey = Prefix + "{crm:limit}:rate"
	// CRMInflightKey is the concurrency semaphore (sorted set of leases).
	CRMInflightKey = Prefix + "{crm:limit}:inflight"
	// CRMPauseKey holds the time until which the CRM asked not to be called.
	CRMPauseKey = Prefix + "{crm:limit}:pause"
	// CRMAdaptiveKey holds the adaptive concurrency limit's state (a hash).
	CRMAdaptiveKey = Prefix + "{crm:limit}:adaptive"
)

// Keys of intake's rate limits, each a GCRA theoretical arrival time in
// µs. They share the tag {intake:rate}: one script checks a client's, a
// site's and the global bucket at once.
const (
	intakeRatePrefix = Prefix + "{intake:rate}:"
	// IntakeGlobalRateKey is the bucket of all sites together.
	IntakeGlobalRateKey = intakeRatePrefix + "global"
)

// IntakeSiteRateKey is a site's request bucket.
func IntakeSiteRateKey(site string) string { return intakeRatePrefix + "site:" + site }

// IntakeClientRateKey is a client's bucket of failed authentications
// (client: an address, or an IPv6 /64).
func IntakeClientRateKey(client string) string { return intakeRatePrefix + "client:" + client }

// IntakeBudgetKey is a site's lead budget through batches (a GCRA time).
func IntakeBudgetKey(site string) string { return Prefix + "intake:leadbudget:" + site }

// SignatureKey remembers a signed request's signature (sig: its MAC in
// hex, either case) within the replay window.
func SignatureKey(site, sig string) string {
	return Prefix + "intake:sig:" + site + ":" + strings.ToLower(sig)
}

// Keys of the dead-letter store. They share the tag {dead}: a record and
// its indexes change in one script, in one slot (dead leads are few).
const (
	deadPrefix       = Prefix + "{dead}:"
	deadRecordPrefix = deadPrefix + "lead:"
	deadSitePrefix   = deadPrefix + "site:"
	deadQueuePrefix  = deadPrefix + "queue:"
	// legacyDeadPrefix starts the previous version's untagged keys of the
	// store, which DeadMigrate renames.
	legacyDeadPrefix = Prefix + "dead:"
	// DeadIndexKey indexes every dead lead by its death time.
	DeadIndexKey = deadPrefix + "index"
)

// DeadRecordKey is a dead lead's record (hash: site, queue, rec).
func DeadRecordKey(id string) string { return deadRecordPrefix + id }

// DeadSiteKey indexes a site's dead leads by death time.
func DeadSiteKey(site string) string { return deadSitePrefix + site }

// DeadQueueKey indexes a queue's dead leads by death time.
func DeadQueueKey(queue string) string { return deadQueuePrefix + queue }

// DeadHistoryKey keeps a requeued lead's earlier attempts for its next
// death.
func DeadHistoryKey(id string) string { return deadPrefix + "history:" + id }
