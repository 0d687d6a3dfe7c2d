package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Options names the process to the trace backend. The zero value names
// it "leadrelay".
type Options struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME (or
	// OTEL_RESOURCE_ATTRIBUTES) sets it, e.g. "leadrelay-worker".
	ServiceName string
	// Version is service.version.
	Version string
}

// Provider is a running SDK: Tracer for the parts that trace, Shutdown to
// export what is left when the process stops.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// Start sets up the OpenTelemetry SDK with the OTLP/HTTP exporter. The
// SDK reads the standard variables itself, from the process environment:
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, their
// _HEADERS, _TIMEOUT, _COMPRESSION and _CERTIFICATE, OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*.
// Whether to call it at all is config's decision (config.Trace.Enabled).
// Nothing is sent until a span ends; an unreachable collector costs
// dropped spans, never a lead.
func Start(ctx context.Context, o Options) (*Provider, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	name := o.ServiceName
	if name == "" {
		name = Scope
	}
	// Later sources win: the environment's names override the default.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", name), attribute.String("service.version", o.Version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{tp: tp}, nil
}

// Tracer is LeadRelay's tracer on this provider.
func (p *Provider) Tracer() trace.Tracer { return p.tp.Tracer(Scope) }

// Shutdown exports the spans still buffered, within ctx, and stops.
func (p *Provider) Shutdown(ctx context.Context) error { return p.tp.Shutdown(ctx) }
