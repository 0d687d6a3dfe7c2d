package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// declare makes LeadRelay's metrics, each from its name and help (and its
// labels or buckets), and registers each with the registerer as it makes
// it, so no metric can be declared and left out of the registration. A nil
// registerer registers nothing.
type declare struct{ f promauto.Factory }

func declareWith(reg prometheus.Registerer) declare { return declare{promauto.With(reg)} }

func (d declare) counter(name, help string) prometheus.Counter {
	return d.f.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func (d declare) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return d.f.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func (d declare) gauge(name, help string) prometheus.Gauge {
	return d.f.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func (d declare) histogram(name, help string, buckets []float64) prometheus.Histogram {
	return d.f.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

func (d declare) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return d.f.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}
