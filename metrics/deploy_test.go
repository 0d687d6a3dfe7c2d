package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v2"

	"leadrelay/metrics"
	"leadrelay/worker"
)

// exportedNames is every metric family a LeadRelay process serves at
// /metrics: LeadRelay's own (each observed once) and asynq's queue metrics.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("lead:deliver", nil), asynq.Queue("leads")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(rdb)))
	m := metrics.New(reg)
	m.IntakeRequest("shop", "accepted")
	m.Enqueued(time.Millisecond)
	m.CRMRequest("add", "ok", time.Millisecond)
	m.Delivery(worker.DeliveryDelivered)
	m.SiteDelivery("shop", worker.DeliveryDelivered)
	m.DeliveryLatency(time.Second)
	m.CRMCircuitOpen(false)
	m.CRMConfigProblem(false)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

var metricRE = regexp.MustCompile(`\b(?:leadrelay|asynq)_[a-z_]+`)

// checkExpr fails when expr names a metric no process exports, or is
// visibly malformed.
func checkExpr(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
	}
	found := metricRE.FindAllString(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s: %q names no LeadRelay or asynq metric", where, expr)
	}
	for _, name := range found {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && names[b] {
				base = b
			}
		}
		if !names[base] {
			t.Errorf("%s: metric %s is not exported (have %v)", where, name, keys(names))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, "leadrelay_") || strings.HasPrefix(k, "asynq_") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// TestAlertRules: deploy/prometheus/alerts.yml covers dead leads, the
// oldest pending lead, the circuit, a config problem and intake 5xx, and
// names only metrics LeadRelay exports. (.ci/run also runs promtool check
// rules where promtool is installed.)
func TestAlertRules(t *testing.T) {
	t.Parallel()
	names := exportedNames(t)
	b, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &file); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var alerts []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			where := "alert " + r.Alert
			checkExpr(t, where, r.Expr, names)
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", where, r.For, err)
				}
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", where, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", where)
			}
		}
	}
	for _, want := range []string{"LeadRelayDeadLeadsRising", "LeadRelayOldestPendingLeadOld", "LeadRelayCRMCircuitOpen", "LeadRelayCRMConfigProblem", "LeadRelayIntake5xx"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s (have %v)", want, alerts)
		}
	}
}

// TestGrafanaDashboard: deploy/grafana/leadrelay.json is a dashboard whose
// every query names exported metrics and known variables.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	names := exportedNames(t)
	b, err := os.ReadFile("../deploy/grafana/leadrelay.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("leadrelay.json: %v", err)
	}
	vars := map[string]bool{"__rate_interval": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard %q (uid %q) with %d panels", d.Title, d.UID, len(d.Panels))
	}
	ids := map[int]bool{}
	varRE := regexp.MustCompile(`\$(\w+)`)
	for _, p := range d.Panels {
		if ids[p.ID] || p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: duplicate id, no title or no query", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr, names)
			for _, m := range varRE.FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q uses undefined variable $%s", p.Title, m[1])
				}
			}
		}
	}
}
