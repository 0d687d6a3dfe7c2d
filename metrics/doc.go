// Package metrics provides LeadRelay's Prometheus metrics: intake requests
// and enqueue latency, deliveries by outcome and by site, CRM request
// latency, the CRM circuit and configuration state, the adaptive CRM limit,
// and the end-to-end latency of a lead from intake to the CRM. A *Metrics
// is the intake.Observer and the worker.Observer; a nil *Metrics records
// nothing.
//
//	reg := prometheus.NewRegistry()
//	m := metrics.New(reg)
//	m.KnownSites("shop", "blog")
//	h := intake.New(intake.Options{Sites: sites, Observer: m}, pub, log)
//	wopts.Observer = m
//	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every label has a bounded set of values: sites not named by KnownSites
// count as "unknown", unexpected outcomes, actions and classes as "other".
package metrics
