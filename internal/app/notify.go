package app

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/delivery"
	"leadrelay/metrics"
	"leadrelay/notify"
	"leadrelay/worker"
)

// openNotifier starts the dead-lead and config-problem webhook
// (LEADRELAY_NOTIFY_URL) until ctx is done; without a URL it tells nobody.
func openNotifier(ctx context.Context, cfg config.Config, log *zap.Logger) (notify.Notifier, error) {
	if cfg.Notify.URL == "" {
		return notify.Nop{}, nil
	}
	wh, err := notify.NewWebhook(cfg.Notify.URL, notify.Options{Log: log.Named("notify"), Redact: []string{cfg.CRM.APIKey}})
	if err != nil {
		return nil, err
	}
	go wh.Run(ctx)
	return wh, nil
}

// outageNotifier counts and tells n when the fleet's CRM circuit opens for
// an outage and when it closes (worker.Options.OnOutage: once for the
// fleet).
func outageNotifier(met *metrics.Metrics, n notify.Notifier) func(open bool, reason delivery.Reason) {
	return func(open bool, reason delivery.Reason) {
		met.CRMCircuitChanged(open)
		if open {
			n.Notify(notify.Event{Kind: notify.CircuitOpened, Reason: reason})
			return
		}
		n.Notify(notify.Event{Kind: notify.CircuitClosed})
	}
}

// rollbackReport counts and notifies a rollback of Redis a worker of this
// process found (worker.Options.OnRollback); the worker logs it.
func rollbackReport(met *metrics.Metrics, n notify.Notifier) func(since time.Time) {
	return func(time.Time) {
		met.RedisRollback()
		n.Notify(notify.Event{Kind: notify.RedisRollback})
	}
}

// notifyingObserver tells the notifier when this process sees a CRM
// configuration problem start or end, besides what the Observer records.
type notifyingObserver struct {
	worker.Observer
	n       notify.Notifier
	problem atomic.Bool
}

// CRMConfigProblem records the state and notifies on a change.
func (o *notifyingObserver) CRMConfigProblem(problem bool) {
	o.Observer.CRMConfigProblem(problem)
	if o.problem.Swap(problem) == problem {
		return
	}
	if problem {
		// The observer learns only that there is a problem; which one, the
		// ops listener's /readyz says (the text names it).
		o.n.Notify(notify.Event{Kind: notify.ConfigProblem, Reason: delivery.Reason{Code: delivery.Config}})
		return
	}
	o.n.Notify(notify.Event{Kind: notify.ConfigResolved})
}
