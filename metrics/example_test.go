package metrics_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"leadrelay/metrics"
)

func Example() {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.KnownSites("shop")

	// intake and the worker report through their Observer interfaces.
	m.IntakeRequest("shop", "accepted")
	m.IntakeRequest("", "unauthorized") // no site: never the key it sent
	m.Delivery("shop", "delivered")
	m.DeliveryLatency(1500 * time.Millisecond)

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "leadrelay_intake_requests_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			fmt.Println(s.GetLabel()[1].GetValue(), s.GetLabel()[0].GetValue(), s.GetCounter().GetValue())
		}
	}
	// Output:
	// shop accepted 1
	// unknown unauthorized 1
}
