package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v2"

	"leadrelay/config"
	"leadrelay/internal/redistest"
)

// chart is the Helm chart's directory.
const chart = "helm/leadrelay"

// helmBinary is the helm program: $LEADRELAY_TEST_HELM (.ci/run builds
// helm from its Go module and sets it), else helm on PATH. The test skips
// without one, and fails under CI.
func helmBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("LEADRELAY_TEST_HELM"); b != "" {
		return b
	}
	if b, err := exec.LookPath("helm"); err == nil {
		return b
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no helm: set LEADRELAY_TEST_HELM (.ci/run builds it from helm.sh/helm/v4)")
	}
	t.Skip("helm not on PATH and LEADRELAY_TEST_HELM unset: go install helm.sh/helm/v4/cmd/helm@v4.3.2")
	return ""
}

// helm runs helm with args in an empty home, so no user's repositories or
// plugins take part.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), errors.New(strings.TrimSpace(errOut.String() + "\n" + out.String()))
	}
	return out.String(), nil
}

// object is one rendered Kubernetes object, as far as the tests read it.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Metrics []struct {
			Type     string `yaml:"type"`
			External struct {
				Metric struct {
					Name string `yaml:"name"`
				} `yaml:"metric"`
			} `yaml:"external"`
		} `yaml:"metrics"`
		MaxUnavailable any `yaml:"maxUnavailable"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int   `yaml:"terminationGracePeriodSeconds"`
	EnableServiceLinks            *bool `yaml:"enableServiceLinks"`
	SecurityContext               struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name string   `yaml:"name"`
		Args []string `yaml:"args"`
		Env  []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom struct {
				SecretKeyRef struct {
					Name     string `yaml:"name"`
					Key      string `yaml:"key"`
					Optional bool   `yaml:"optional"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		LivenessProbe  probe `yaml:"livenessProbe"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		Security       struct {
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
	} `yaml:"containers"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// render runs helm template with a values file from the chart's ci/ and
// parses every document it prints.
func render(t *testing.T, valuesFile string, set ...string) []object {
	t.Helper()
	args := []string{"template", "relay", chart, "--namespace", "leads", "-f", filepath.Join(chart, "ci", valuesFile)}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	var objs []object
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template printed YAML that does not parse: %v", err)
		}
		if o.Kind != "" {
			objs = append(objs, o)
		}
	}
	return objs
}

// TestHelmLint: helm's own checks pass on every CI values file.
func TestHelmLint(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(chart, "ci", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no values files in the chart's ci/")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			if out, err := helm(t, "lint", "--strict", chart, "-f", f); err != nil {
				t.Errorf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// TestHelmTemplate renders the chart with the Secret it creates and checks
// what a cluster would run: both roles with their probes, restrictions and
// grace period, settings config knows, and an environment (the Secret's
// values included) that passes config.Load.
func TestHelmTemplate(t *testing.T) {
	t.Parallel()
	objs := render(t, "created-secret-values.yaml")
	kinds := map[string]int{}
	var secret map[string]string
	for _, o := range objs {
		kinds[o.Kind]++
		if o.Kind == "Secret" {
			secret = o.StringData
		}
	}
	for kind, n := range map[string]int{"Deployment": 2, "Service": 3, "PodDisruptionBudget": 2, "Secret": 1} {
		if kinds[kind] != n {
			t.Errorf("%d %s objects, want %d", kinds[kind], kind, n)
		}
	}
	known := knownSettings()
	roles := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		pod := o.Spec.Template.Spec
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers", o.Metadata.Name, len(pod.Containers))
		}
		c := pod.Containers[0]
		roles[strings.Join(c.Args, " ")] = true
		t.Run(o.Metadata.Name, func(t *testing.T) {
			keyDir := t.TempDir()
			env := map[string]string{}
			for _, e := range c.Env {
				if !known[e.Name] {
					t.Errorf("env %s: config does not read it", e.Name)
				}
				ref := e.ValueFrom.SecretKeyRef
				switch {
				case ref.Key != "":
					v, ok := secret[ref.Key]
					if !ok && !ref.Optional {
						t.Errorf("env %s: the Secret has no key %q", e.Name, ref.Key)
					}
					env[e.Name] = v
				case e.Name == "LEADRELAY_CRM_APIKEY_FILE":
					// Mounted from the Secret's crm-apikey; here, a file of it.
					env[e.Name] = filepath.Join(keyDir, "crm-apikey")
					if err := os.WriteFile(env[e.Name], []byte(secret["crm-apikey"]), 0o440); err != nil {
						t.Fatal(err)
					}
				default:
					env[e.Name] = e.Value
				}
			}
			if _, err := config.Load(func(k string) string { return env[k] }); err != nil {
				t.Errorf("the container's environment does not load: %v", err)
			}
			shutdown, err := time.ParseDuration(env["LEADRELAY_SHUTDOWN_TIMEOUT"])
			if err != nil {
				t.Fatalf("LEADRELAY_SHUTDOWN_TIMEOUT %q: %v", env["LEADRELAY_SHUTDOWN_TIMEOUT"], err)
			}
			if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace < shutdown+10*time.Second {
				t.Errorf("terminationGracePeriodSeconds %s leaves less than 10s over LEADRELAY_SHUTDOWN_TIMEOUT %s", grace, shutdown)
			}
			if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("probes %q and %q, want /healthz and /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
			}
			if !pod.SecurityContext.RunAsNonRoot || !c.Security.ReadOnlyRootFilesystem ||
				c.Security.AllowPrivilegeEscalation == nil || *c.Security.AllowPrivilegeEscalation {
				t.Error("want a non-root user, a read-only root file system and no privilege escalation")
			}
			if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
				t.Error("service links on: Kubernetes adds RELEASE_*_PORT variables, LEADRELAY_* ones for a release named leadrelay")
			}
		})
	}
	if !roles["intake"] || !roles["worker"] {
		t.Errorf("roles %v, want intake and worker", roles)
	}
	if env := envOf(t, objs, "relay-leadrelay-intake"); env["LEADRELAY_CRM_APIKEY_FILE"] != "" || env["LEADRELAY_CRM_URL"] != "" {
		t.Error("intake gets CRM settings; only workers talk to the CRM")
	}
}

// envOf is the plain env of a rendered Deployment's container.
func envOf(t *testing.T, objs []object, name string) map[string]string {
	t.Helper()
	for _, o := range objs {
		if o.Kind == "Deployment" && o.Metadata.Name == name {
			env := map[string]string{}
			for _, e := range o.Spec.Template.Spec.Containers[0].Env {
				env[e.Name] = e.Value
			}
			return env
		}
	}
	t.Fatalf("no Deployment %s", name)
	return nil
}

// TestHelmAutoscaling: with an existing Secret the chart creates none, and
// the workers' autoscaler scales on CPU and on a metric LeadRelay serves.
func TestHelmAutoscaling(t *testing.T) {
	t.Parallel()
	objs := render(t, "existing-secret-autoscaling-values.yaml")
	served := asynqMetricNames(t)
	var hpa *object
	for i, o := range objs {
		switch o.Kind {
		case "Secret":
			t.Error("a Secret is rendered although secrets.existingSecret is set")
		case "HorizontalPodAutoscaler":
			hpa = &objs[i]
		}
	}
	if hpa == nil {
		t.Fatal("no HorizontalPodAutoscaler")
	}
	types := map[string]bool{}
	for _, m := range hpa.Spec.Metrics {
		types[m.Type] = true
		if m.Type == "External" && !served[m.External.Metric.Name] {
			t.Errorf("external metric %q is not one LeadRelay serves (%v)", m.External.Metric.Name, served)
		}
	}
	if !types["Resource"] || !types["External"] {
		t.Errorf("metrics %v, want Resource (CPU) and External (oldest pending lead)", types)
	}
}

// asynqMetricNames are the metric families asynq's queue collector, which
// every LeadRelay process registers, serves for a queue with a task.
func asynqMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	rdb := redistest.MiniClient(t)
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("lead:deliver", nil), asynq.Queue("leads")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(rdb)))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	return names
}

// TestHelmRefuses: the chart stops a release that would start broken or
// put a value in the wrong place, naming what to fix.
func TestHelmRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"a setting the chart manages", []string{"config.LEADRELAY_SHUTDOWN_TIMEOUT=10s"}, "shutdownTimeoutSeconds"},
		{"a secret among plain settings", []string{"intake.config.LEADRELAY_SITES=shop=x"}, "is a secret"},
		{"no CRM URL", []string{"worker.config.LEADRELAY_CRM_URL="}, "LEADRELAY_CRM_URL is required"},
		{"no site keys", []string{"secrets.sites="}, "secrets.sites"},
		{"not a LeadRelay name", []string{"config.CRM_URL=x"}, "not a LeadRelay setting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"template", "relay", chart, "-f", filepath.Join(chart, "ci", "created-secret-values.yaml")}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, err := helm(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template %s: %v, want an error naming %q", strconv.Quote(strings.Join(tc.set, " ")), err, tc.want)
			}
		})
	}
}
