package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"
)

var metricRE = regexp.MustCompile(`\b(?:leadrelay|asynq)_[a-z_]+`)

// checkExpr fails when expr names no LeadRelay or asynq metric, or is
// visibly malformed. Whether the processes export the metrics it names is
// cmd/leadrelay's TestMetricsWiring: it scrapes running processes.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
	}
	if !metricRE.MatchString(expr) {
		t.Errorf("%s: %q names no LeadRelay or asynq metric", where, expr)
	}
}

// decodeFile reads the shipped file at path into v with unmarshal; a file
// that cannot be read or decoded fails t.
func decodeFile(t *testing.T, path string, unmarshal func([]byte, any) error, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestAlertRules: deploy/prometheus/alerts.yml covers dead leads, the
// oldest pending lead, the circuit, a config problem, intake 5xx, a site
// form not in its charset and the CRM audit's finds, each well formed. (.ci/run also runs
// promtool check rules where promtool is installed.)
func TestAlertRules(t *testing.T) {
	t.Parallel()
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
	decodeFile(t, "../deploy/prometheus/alerts.yml", yaml.UnmarshalStrict, &file)
	var alerts []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			where := "alert " + r.Alert
			checkExpr(t, where, r.Expr)
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
	for _, want := range []string{"LeadRelayDeadLeadsRising", "LeadRelayOldestPendingLeadOld", "LeadRelayCRMCircuitOpen", "LeadRelayCRMConfigProblem", "LeadRelayIntake5xx", "LeadRelaySiteFormNotInItsCharset", "LeadRelayCRMDuplicates", "LeadRelayCRMLeadsMissing", "LeadRelayCRMAuditStale"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s (have %v)", want, alerts)
		}
	}
}

// TestGrafanaDashboard: deploy/grafana/leadrelay.json is a dashboard whose
// every panel has a query naming a metric and only known variables.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
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
	decodeFile(t, "../deploy/grafana/leadrelay.json", json.Unmarshal, &d)
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
			checkExpr(t, "panel "+p.Title, tg.Expr)
			for _, m := range varRE.FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q uses undefined variable $%s", p.Title, m[1])
				}
			}
		}
	}
}
