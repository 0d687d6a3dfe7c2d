package app

import (
	"context"
	"time"

	"go.uber.org/zap"

	"leadrelay/tracing"
)

// openTracing starts the OpenTelemetry SDK when the OTEL_* variables turn
// tracing on (config.Trace), and leaves r.tracer nil otherwise, so that
// nothing traces and no task carries a traceparent. The provider is shut
// down last but the Redis client, after the servers and the worker
// stopped, exporting what is still buffered.
func (r *relay) openTracing(ctx context.Context) error {
	t := r.cfg.Trace
	if !t.Enabled() {
		return nil
	}
	name := t.ServiceName
	if name == "" {
		name = serviceName(r.roles)
	}
	p, err := tracing.Start(ctx, tracing.Options{ServiceName: name, Version: Version})
	if err != nil {
		return err
	}
	r.tracer = p.Tracer()
	r.onClose(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(sctx); err != nil {
			r.log.Warn("traces not all exported at shutdown", zap.Error(err))
		}
	})
	r.log.Info("tracing on: spans are exported over OTLP/HTTP", zap.String("service", name), zap.String("endpoint", t.Endpoint))
	return nil
}

// serviceName is the default service.name of a process of roles.
func serviceName(roles Roles) string {
	switch {
	case roles.Intake && roles.Worker:
		return "leadrelay"
	case roles.Worker:
		return "leadrelay-worker"
	}
	return "leadrelay-intake"
}
