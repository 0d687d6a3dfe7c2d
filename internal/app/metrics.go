package app

import (
	"net/http"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"leadrelay/intake"
	"leadrelay/metrics"
	"leadrelay/worker"
)

// A *metrics.Metrics observes both intake and the worker.
var (
	_ intake.Observer = (*metrics.Metrics)(nil)
	_ worker.Observer = (*metrics.Metrics)(nil)
)

// newMetrics builds the process's one registry (LeadRelay's metrics,
// asynq's queue sizes read from Redis on each scrape, Go runtime and process
// metrics) and the handler that serves it at /metrics.
func newMetrics(rdb redis.UniversalClient) (*metrics.Metrics, http.Handler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		asynqmetrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(rdb)),
	)
	m := metrics.New(reg)
	return m, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
