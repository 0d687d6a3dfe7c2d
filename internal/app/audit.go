package app

import (
	"context"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/audit"
	"leadrelay/config"
	"leadrelay/lead"
	"leadrelay/metrics"
	"leadrelay/notify"
	"leadrelay/worker"
)

// newAuditor is the CRM audit of a worker process, reading the CRM
// through the worker's runs' API (limited and bounded as they are), or
// nil when LEADRELAY_AUDIT_INTERVAL is 0. A content match settles for a
// reconcile wait and a CRM timeout: an add still being recorded is not
// taken for a duplicate.
func newAuditor(h *worker.Handler, rds *Redis, cfg config.Config, codec lead.Codec, ids lead.IDKey, met *metrics.Metrics, n notify.Notifier, log *zap.Logger) *audit.Auditor {
	if cfg.Worker.AuditInterval <= 0 {
		return nil
	}
	return audit.New(h.CRM(), rds.Client, audit.Options{
		Queue: cfg.Queue.Name, Interval: cfg.Worker.AuditInterval, Window: cfg.Worker.AuditWindow,
		Settle: cfg.Worker.ReconcileAfter + cfg.CRM.Timeout, Codec: codec, IDKey: ids, Clock: h.Now,
		Notifier: n, Recorder: met, Log: log,
	})
}

// auditNote shows the fleet's latest CRM audit in /readyz: a duplicate or
// a missing lead is the operators' to look at, not a reason to stop.
func auditNote(rc redis.UniversalClient) Note {
	return func(ctx context.Context) string {
		rep, ok, err := audit.Last(ctx, rc)
		switch {
		case err != nil:
			return "latest audit unknown: " + err.Error()
		case !ok:
			return "no audit in the last two intervals (LEADRELAY_AUDIT_INTERVAL)"
		}
		return rep.Line()
	}
}
