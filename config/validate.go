package config

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"leadrelay/worker"
)

// validate checks each section, then what ties sections together, and
// sorts the problems so that the report reads the same every time.
func (c *Config) validate(p *parser) {
	c.validateCRM(p)
	c.validateIntake(p)
	c.validateSecrets(p)
	c.validateOps(p)
	c.validateDelivery(p)
	c.validateLog(p)
	c.validateData(p)
	c.validateTrace(p)
	sort.Slice(p.errs, func(i, j int) bool { return p.errs[i].Error() < p.errs[j].Error() })
}

func (c *Config) validateCRM(p *parser) {
	if c.CRM.URL != "" {
		u, err := url.Parse(c.CRM.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("LEADRELAY_CRM_URL", "must be an http(s) URL such as https://crm.example.com"+p.gotURL("LEADRELAY_CRM_URL"))
		} else if u.User != nil || u.RawQuery != "" {
			p.fail("LEADRELAY_CRM_URL", "must not carry credentials or a query; use LEADRELAY_CRM_LOGIN and LEADRELAY_CRM_APIKEY")
		}
		if c.CRM.Login == "" {
			p.fail("LEADRELAY_CRM_LOGIN", "is required with LEADRELAY_CRM_URL")
		}
		if c.CRM.APIKey == "" {
			p.fail("LEADRELAY_CRM_APIKEY", "is required with LEADRELAY_CRM_URL (or set LEADRELAY_CRM_APIKEY_FILE)")
		}
	}
	if c.CRM.API != "v1" && c.CRM.API != "v2" {
		p.fail("LEADRELAY_CRM_API", "must be v1 or v2"+p.got("LEADRELAY_CRM_API"))
	}
	if c.CRM.JSON && c.CRM.API != "v2" {
		p.fail("LEADRELAY_CRM_JSON", "needs LEADRELAY_CRM_API=v2, got "+strconv.Quote(c.CRM.API))
	}
	p.positive("LEADRELAY_CRM_TIMEOUT", float64(c.CRM.Timeout))
	p.notNegative("LEADRELAY_CRM_RATE_LIMIT", c.CRM.RateLimit)
	p.notNegative("LEADRELAY_CRM_MAX_CONCURRENT", float64(c.CRM.MaxConcurrent))
	if c.Notify.URL != "" {
		if u, err := url.Parse(c.Notify.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("LEADRELAY_NOTIFY_URL", "must be an http(s) URL such as https://hooks.slack.com/services/… (not quoted: it holds a token)")
		}
	}
}

func (c *Config) validateIntake(p *parser) {
	in := c.Intake
	if in.SiteMaxQueued < 0 || in.MaxQueued < 0 {
		p.fail("LEADRELAY_SITE_MAX_QUEUED", "and LEADRELAY_MAX_QUEUED must not be negative (0 is no cap)")
	}
	if in.MaxQueued > 0 && in.SiteMaxQueued > in.MaxQueued {
		p.fail("LEADRELAY_SITE_MAX_QUEUED", "must not exceed LEADRELAY_MAX_QUEUED")
	}
	if in.MemoryGuard < 0 || in.MemoryGuard > 1 {
		p.fail("LEADRELAY_REDIS_MEMORY_GUARD", "must be a share between 0 (off) and 1, such as 0.8"+p.got("LEADRELAY_REDIS_MEMORY_GUARD"))
	}
	if in.SiteMemoryShare < 0 || in.SiteMemoryShare > 1 {
		p.fail("LEADRELAY_SITE_MEMORY_SHARE", "must be a share between 0 (off) and 1, such as 0.25"+p.got("LEADRELAY_SITE_MEMORY_SHARE"))
	}
	p.notNegative("LEADRELAY_SITE_RATE_LIMIT", in.SiteRateLimit)
	p.notNegative("LEADRELAY_SITE_LEAD_RATE_LIMIT", in.SiteLeadRateLimit)
	p.notNegative("LEADRELAY_GLOBAL_RATE_LIMIT", in.GlobalRateLimit)
}

func (c *Config) validateOps(p *parser) {
	if (c.Ops.User == "") != (c.Ops.Password == "") {
		p.fail("LEADRELAY_UI_USER", "and LEADRELAY_UI_PASSWORD must be set together")
	}
	if c.Ops.NoAuth && c.Ops.User != "" {
		p.fail("LEADRELAY_OPS_NO_AUTH", "and LEADRELAY_UI_USER are both set; set one")
	}
	if c.Ops.Addr == c.Server.HTTPAddr && !strings.HasSuffix(c.Ops.Addr, ":0") {
		p.fail("LEADRELAY_OPS_ADDR", "must differ from LEADRELAY_HTTP_ADDR: operator routes never share the site-facing listener")
	}
	for _, h := range c.Ops.Hosts {
		if strings.ContainsAny(h, "/:@ ") {
			p.fail("LEADRELAY_OPS_HOSTS", fmt.Sprintf("entry %q must be a bare host name such as ops.example.com", h))
		}
	}
	if c.Server.MaxConnections < 0 {
		p.fail("LEADRELAY_MAX_CONNECTIONS", "must not be negative")
	}
	if c.Server.MaxConnectionsPerClient < 0 {
		p.fail("LEADRELAY_MAX_CONNECTIONS_PER_CLIENT", "must not be negative (0 is no cap)")
	}
	p.positive("LEADRELAY_SHUTDOWN_TIMEOUT", float64(c.Server.ShutdownTimeout))
}

// validateDelivery checks the queue, the worker and the Redis waits.
func (c *Config) validateDelivery(p *parser) {
	w, q := c.Worker, c.Queue
	if q.Name == "" || strings.ContainsAny(q.Name, " :{}") {
		p.fail("LEADRELAY_QUEUE", "must be a plain name such as leads"+p.got("LEADRELAY_QUEUE"))
	}
	p.positive("LEADRELAY_MAX_RETRY", float64(q.MaxRetry))
	p.positive("LEADRELAY_DEDUP_TTL", float64(q.DedupTTL))
	p.positive("LEADRELAY_KEYLESS_WINDOW", float64(q.KeylessWindow))
	p.positive("LEADRELAY_CONCURRENCY", float64(w.Concurrency))
	p.positive("LEADRELAY_POLL_INTERVAL", float64(w.PollInterval))
	p.positive("LEADRELAY_BREAKER_THRESHOLD", float64(w.BreakerThreshold))
	p.positive("LEADRELAY_RETRY_INITIAL", float64(w.RetryInitial))
	p.positive("LEADRELAY_RETRY_MAX_DELAY", float64(w.RetryMaxDelay))
	p.positive("LEADRELAY_DELIVERED_TTL", float64(w.DeliveredTTL))
	p.positive("LEADRELAY_BREAKER_COOLDOWN", float64(w.BreakerCooldown))
	p.positive("LEADRELAY_REDIS_WAIT_TIMEOUT", float64(c.Redis.WaitTimeout))
	if w.RetryMultiplier < 1 {
		p.fail("LEADRELAY_RETRY_MULTIPLIER", "must be at least 1"+p.got("LEADRELAY_RETRY_MULTIPLIER"))
	}
	if w.ReconcileAfter < c.CRM.Timeout {
		p.fail("LEADRELAY_RECONCILE_AFTER", fmt.Sprintf("must not be shorter than LEADRELAY_CRM_TIMEOUT (%s < %s): the first request could still be in flight", w.ReconcileAfter, c.CRM.Timeout))
	}
	if w.RetryMaxDelay < w.RetryInitial {
		p.fail("LEADRELAY_RETRY_MAX_DELAY", fmt.Sprintf("must not be shorter than LEADRELAY_RETRY_INITIAL (%s < %s)", w.RetryMaxDelay, w.RetryInitial))
	}
	if w.DeliveredTTL < q.DedupTTL {
		p.fail("LEADRELAY_DELIVERED_TTL", fmt.Sprintf("must not be shorter than LEADRELAY_DEDUP_TTL (%s < %s)", w.DeliveredTTL, q.DedupTTL))
	}
	if w.ReconcileUnknown != worker.ReconcileResend && w.ReconcileUnknown != worker.ReconcileDead {
		p.fail("LEADRELAY_RECONCILE_UNKNOWN", "must be resend or dead"+p.got("LEADRELAY_RECONCILE_UNKNOWN"))
	}
	if w.AuditInterval < 0 {
		p.fail("LEADRELAY_AUDIT_INTERVAL", "must not be negative (0 turns the audit off)"+p.got("LEADRELAY_AUDIT_INTERVAL"))
	}
	p.positive("LEADRELAY_AUDIT_WINDOW", float64(w.AuditWindow))
	if w.AuditWindow > q.DedupTTL {
		p.fail("LEADRELAY_AUDIT_WINDOW", fmt.Sprintf("must not be longer than LEADRELAY_DEDUP_TTL (%s > %s): delivered tasks are kept that long", w.AuditWindow, q.DedupTTL))
	}
	if w.DeadRetention < 0 {
		p.fail("LEADRELAY_DEAD_RETENTION", "must not be negative (0 keeps dead leads)")
	}
	p.notNegative("LEADRELAY_REDIS_WAIT_REPLICAS", float64(c.Redis.WaitReplicas))
	if c.Redis.WaitReplicas > 0 && c.Redis.Mode == RedisCluster {
		p.fail("LEADRELAY_REDIS_WAIT_REPLICAS", "is not supported with a Redis Cluster yet: WAIT confirms the writes of one node, and a lead's task and records live on different nodes")
	}
}

func (c *Config) validateLog(p *parser) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.fail("LEADRELAY_LOG_LEVEL", "must be debug, info, warn or error"+p.got("LEADRELAY_LOG_LEVEL"))
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		p.fail("LEADRELAY_LOG_FORMAT", "must be json or console"+p.got("LEADRELAY_LOG_FORMAT"))
	}
}

// MinUIPasswordLen is the shortest LEADRELAY_UI_PASSWORD outside the demo.
const MinUIPasswordLen = 12

// placeholder reports whether a secret is a sample value from the docs or
// the compose file (change-me…), which must never guard a real deployment.
func placeholder(v string) bool {
	l := strings.ToLower(v)
	return strings.Contains(l, "change-me") || strings.Contains(l, "changeme") || strings.Contains(l, "change_me")
}

// validateSecrets refuses, outside the embedded demo, placeholder secrets
// and a weak UI password, naming the variable and never the value. The
// sites' keys and secrets are checked with the sites (checkSites).
func (c *Config) validateSecrets(p *parser) {
	if c.EmbeddedRedis() {
		return // the demo's data are throw-away and its listeners loopback
	}
	if placeholder(c.CRM.APIKey) {
		p.fail("LEADRELAY_CRM_APIKEY", "is a placeholder (change-me…); set the CRM account's real key")
	}
	if placeholder(c.Ops.Password) {
		p.fail("LEADRELAY_UI_PASSWORD", "is a placeholder (change-me…); choose a password of your own")
	} else if c.Ops.Password != "" && len(c.Ops.Password) < MinUIPasswordLen {
		p.fail("LEADRELAY_UI_PASSWORD", fmt.Sprintf("is shorter than %d characters", MinUIPasswordLen))
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validateData checks the data keys against their opt-out. That a
// production start needs one or the other is internal/app's to say: the
// embedded demo needs neither, and ctl's reading commands only keys.
func (c *Config) validateData(p *parser) {
	if c.Data.Keys != nil && c.Data.Unencrypted {
		p.fail("LEADRELAY_DATA_UNENCRYPTED", "and LEADRELAY_DATA_KEYS are both set; set one")
	}
}

// validateTrace refuses what the relay cannot export: another exporter
// than OTLP, OTLP over gRPC, an endpoint that is no http(s) URL.
func (c *Config) validateTrace(p *parser) {
	t := c.Trace
	if t.Exporter != "" && t.Exporter != "otlp" && t.Exporter != "none" {
		p.fail("OTEL_TRACES_EXPORTER", "must be otlp or none (LeadRelay exports traces over OTLP/HTTP only)"+p.got("OTEL_TRACES_EXPORTER"))
	}
	if t.Protocol != "http/protobuf" {
		p.fail("OTEL_EXPORTER_OTLP_PROTOCOL", "must be http/protobuf (LeadRelay links the OTLP/HTTP exporter only)"+p.got("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v := p.raw(name); v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.fail(name, "must be an http(s) URL such as http://127.0.0.1:4318"+p.gotURL(name))
			}
		}
	}
}
