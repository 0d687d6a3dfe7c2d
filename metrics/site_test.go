package metrics_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"leadrelay/metrics"
	"leadrelay/worker"
)

// TestSiteDelivery: deliveries are counted per site, learnt from the
// leads (a worker has no site list), with a bounded label set.
func TestSiteDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		calls [][2]string // site, outcome
		want  string
	}{
		{"per site", [][2]string{{"shop", worker.DeliveryDelivered}, {"shop", worker.DeliveryDelivered}, {"info@blog.example", worker.DeliveryDead}},
			`leadrelay_site_deliveries_total{outcome="dead",site="info@blog.example"} 1
leadrelay_site_deliveries_total{outcome="delivered",site="shop"} 2
`},
		{"odd names and outcomes", [][2]string{{"", worker.DeliveryRetried}, {"bad site!", "delivered"}, {"shop", "exploded"}},
			`leadrelay_site_deliveries_total{outcome="delivered",site="other"} 1
leadrelay_site_deliveries_total{outcome="other",site="shop"} 1
leadrelay_site_deliveries_total{outcome="retried",site="unknown"} 1
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewPedanticRegistry()
			m := metrics.New(reg)
			for _, c := range tc.calls {
				m.Delivery(c[0], c[1])
			}
			want := "# HELP leadrelay_site_deliveries_total Processed lead tasks by site and outcome (the outcomes of leadrelay_deliveries_total).\n# TYPE leadrelay_site_deliveries_total counter\n" + tc.want
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "leadrelay_site_deliveries_total"); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewPedanticRegistry()
		m := metrics.New(reg)
		for i := 0; i < metrics.MaxDeliverySites+10; i++ {
			m.Delivery(fmt.Sprintf("site%d", i), worker.DeliveryDelivered)
		}
		if n, _ := testutil.GatherAndCount(reg, "leadrelay_site_deliveries_total"); n != metrics.MaxDeliverySites+1 {
			t.Errorf("%d series, want %d and other", n, metrics.MaxDeliverySites)
		}
	})
}
