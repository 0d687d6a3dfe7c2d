package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// auditMetrics are the figures of the promise's own checks: the CRM
// audit (package audit) and Redis rollbacks (worker/rollback.go).
type auditMetrics struct {
	duplicates prometheus.Counter
	missing    prometheus.Counter
	last       prometheus.Gauge
	checked    prometheus.Gauge
	rollbacks  prometheus.Counter
}

func newAuditMetrics(d declare) auditMetrics {
	return auditMetrics{
		duplicates: d.counter("leadrelay_audit_duplicates_total",
			"CRM leads the CRM audit found made twice for one relay lead, each counted once by the process whose audit found it first (sum over the fleet)."),
		missing: d.counter("leadrelay_audit_missing_total",
			"Delivered leads the CRM audit found missing from the CRM (deleted there, or never made), each counted once."),
		last: d.gauge("leadrelay_audit_last_timestamp_seconds",
			"When this process last finished a CRM audit (Unix time); 0 when it never did (one worker audits per interval)."),
		checked: d.gauge("leadrelay_audit_checked_leads",
			"Delivered leads this process's latest CRM audit checked against the CRM."),
		rollbacks: d.counter("leadrelay_redis_rollbacks_total",
			"Times a worker of this process found Redis back with older data (an older snapshot, a lagging replica promoted): leads received before are looked up before any add for a day."),
	}
}

// Audited records one CRM audit (audit.Recorder): when it ran, the
// delivered leads it checked, and the duplicates and missing leads no
// audit had found before.
func (m *Metrics) Audited(at time.Time, checked, newDuplicates, newMissing int) {
	if m == nil {
		return
	}
	m.audit.duplicates.Add(float64(newDuplicates))
	m.audit.missing.Add(float64(newMissing))
	m.audit.last.Set(float64(at.UnixNano()) / 1e9)
	m.audit.checked.Set(float64(checked))
}

// RedisRollback counts a rollback of Redis a worker of this process found
// (worker.Options.OnRollback).
func (m *Metrics) RedisRollback() {
	if m == nil {
		return
	}
	m.audit.rollbacks.Inc()
}
