package config

import (
	"leadrelay/audit"
	"time"

	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/internal/seal"
	"leadrelay/lead"
	"leadrelay/worker"
)

// The sections a Var belongs to (Var.Section), as Config names them.
const (
	SectionRedis  = "redis"
	SectionQueue  = "queue"
	SectionCRM    = "crm"
	SectionWorker = "worker"
	SectionIntake = "intake"
	SectionServer = "server"
	SectionOps    = "ops"
	SectionNotify = "notify"
	SectionLog    = "log"
	SectionData   = "data"
	SectionTrace  = "trace"
)

// Each loader below reads one section, in the order Vars lists them.

func (p *parser) redis() Redis {
	p.section = SectionRedis
	url := p.secret("LEADRELAY_REDIS_URL")
	r := p.parseRedis(url, p.str("LEADRELAY_REDIS_CLUSTER", ""), p.secret("LEADRELAY_REDIS_SENTINEL_PASSWORD"))
	r.URL = url
	r.WaitReplicas = p.int("LEADRELAY_REDIS_WAIT_REPLICAS", 0)
	r.WaitTimeout = p.dur("LEADRELAY_REDIS_WAIT_TIMEOUT", rdb.DefaultSyncTimeout)
	r.AllowEviction = p.bool("LEADRELAY_REDIS_ALLOW_EVICTION", false)
	r.AllowNoAOF = p.bool("LEADRELAY_REDIS_ALLOW_NO_AOF", false)
	return r
}

func (p *parser) queue() Queue {
	p.section = SectionQueue
	return Queue{
		Name:          p.str("LEADRELAY_QUEUE", lead.DefaultQueue),
		MaxRetry:      p.int("LEADRELAY_MAX_RETRY", lead.DefaultMaxRetry),
		DedupTTL:      p.dur("LEADRELAY_DEDUP_TTL", lead.DefaultDedupTTL),
		KeylessWindow: p.dur("LEADRELAY_KEYLESS_WINDOW", lead.DefaultKeylessWindow),
	}
}

func (p *parser) crm() CRM {
	p.section = SectionCRM
	return CRM{
		URL:             p.str("LEADRELAY_CRM_URL", ""),
		API:             p.str("LEADRELAY_CRM_API", "v1"),
		JSON:            p.bool("LEADRELAY_CRM_JSON", false),
		Login:           p.str("LEADRELAY_CRM_LOGIN", ""),
		APIKey:          p.secret("LEADRELAY_CRM_APIKEY"),
		Timeout:         p.dur("LEADRELAY_CRM_TIMEOUT", crmclient.DefaultTimeout),
		IPInDescription: p.bool("LEADRELAY_CRM_IP_IN_DESCRIPTION", true),
		ReplaceEmoji:    p.bool("LEADRELAY_CRM_REPLACE_EMOJI", true),
		RateLimit:       p.float("LEADRELAY_CRM_RATE_LIMIT", 0),
		MaxConcurrent:   p.int("LEADRELAY_CRM_MAX_CONCURRENT", 32),
		Adaptive:        p.bool("LEADRELAY_CRM_ADAPTIVE", true),
	}
}

func (p *parser) worker() Worker {
	p.section = SectionWorker
	return Worker{
		Concurrency:      p.int("LEADRELAY_CONCURRENCY", worker.DefaultConcurrency),
		PollInterval:     p.dur("LEADRELAY_POLL_INTERVAL", worker.DefaultPollInterval),
		RetryInitial:     p.dur("LEADRELAY_RETRY_INITIAL", worker.DefaultRetryInitial),
		RetryMultiplier:  p.float("LEADRELAY_RETRY_MULTIPLIER", worker.DefaultRetryMultiplier),
		RetryMaxDelay:    p.dur("LEADRELAY_RETRY_MAX_DELAY", worker.DefaultRetryMaxDelay),
		DeliveredTTL:     p.dur("LEADRELAY_DELIVERED_TTL", worker.DefaultDeliveredTTL),
		ReconcileUnknown: p.str("LEADRELAY_RECONCILE_UNKNOWN", worker.ReconcileResend),
		ReconcileAfter:   p.dur("LEADRELAY_RECONCILE_AFTER", 2*time.Minute),
		BreakerThreshold: p.int("LEADRELAY_BREAKER_THRESHOLD", worker.DefaultBreakerThreshold),
		BreakerCooldown:  p.dur("LEADRELAY_BREAKER_COOLDOWN", worker.DefaultBreakerCooldown),
		DeadRetention:    p.dur("LEADRELAY_DEAD_RETENTION", 0),
		AuditInterval:    p.dur("LEADRELAY_AUDIT_INTERVAL", audit.DefaultInterval),
		AuditWindow:      p.dur("LEADRELAY_AUDIT_WINDOW", audit.DefaultWindow),
	}
}

// intake reads the Intake section but its sites, which need the CRM key
// (p.sites resolves them once every section is read).
func (p *parser) intake() Intake {
	p.section = SectionIntake
	// LEADRELAY_SITES_FILE is the sites file, not a file holding
	// LEADRELAY_SITES.
	p.siteKeys = p.pairs(sitesVar, false)
	p.siteOrigins = p.origins(siteOriginsVar)
	p.siteSecrets = p.pairs(siteSecretsVar, true)
	return Intake{
		SitesFile:         p.str(sitesFileVar, ""),
		SitesPoll:         p.dur("LEADRELAY_SITES_FILE_POLL", 2*time.Second),
		SiteRateLimit:     p.float("LEADRELAY_SITE_RATE_LIMIT", 10),
		SiteLeadRateLimit: p.float("LEADRELAY_SITE_LEAD_RATE_LIMIT", 100),
		GlobalRateLimit:   p.float("LEADRELAY_GLOBAL_RATE_LIMIT", 200),
		SiteMaxQueued:     int64(p.int("LEADRELAY_SITE_MAX_QUEUED", 10000)),
		MaxQueued:         int64(p.int("LEADRELAY_MAX_QUEUED", 100000)),
		MemoryGuard:       p.float("LEADRELAY_REDIS_MEMORY_GUARD", 0.8),
		SiteMemoryShare:   p.float("LEADRELAY_SITE_MEMORY_SHARE", 0.25),
	}
}

func (p *parser) server() Server {
	p.section = SectionServer
	return Server{
		HTTPAddr:                p.str("LEADRELAY_HTTP_ADDR", "127.0.0.1:8080"),
		MaxConnections:          p.int("LEADRELAY_MAX_CONNECTIONS", 1024),
		MaxConnectionsPerClient: p.int("LEADRELAY_MAX_CONNECTIONS_PER_CLIENT", 64),
		TrustedProxies:          p.prefixes("LEADRELAY_TRUSTED_PROXIES"),
		ShutdownTimeout:         p.dur("LEADRELAY_SHUTDOWN_TIMEOUT", worker.DefaultShutdownTimeout),
	}
}

func (p *parser) ops() Ops {
	p.section = SectionOps
	return Ops{
		Addr:     p.str("LEADRELAY_OPS_ADDR", ""),
		Hosts:    p.list("LEADRELAY_OPS_HOSTS"),
		NoAuth:   p.bool("LEADRELAY_OPS_NO_AUTH", false),
		User:     p.str("LEADRELAY_UI_USER", ""),
		Password: p.secret("LEADRELAY_UI_PASSWORD"),
		ReadOnly: p.bool("LEADRELAY_UI_READONLY", false),
	}
}

func (p *parser) notify() Notify {
	p.section = SectionNotify
	return Notify{URL: p.secret("LEADRELAY_NOTIFY_URL")}
}

func (p *parser) log() Log {
	p.section = SectionLog
	return Log{
		Level:  p.str("LEADRELAY_LOG_LEVEL", "info"),
		Format: p.str("LEADRELAY_LOG_FORMAT", ""),
	}
}

func (p *parser) data() Data {
	p.section = SectionData
	d := Data{Unencrypted: p.bool("LEADRELAY_DATA_UNENCRYPTED", false)}
	if text := p.secret("LEADRELAY_ID_KEY"); text != "" {
		raw, err := seal.ParseKey(text)
		if err != nil {
			p.fail("LEADRELAY_ID_KEY", err.Error()) // never quotes the key
		}
		d.IDKey = raw
	}
	text := p.secret("LEADRELAY_DATA_KEYS")
	if text == "" {
		return d
	}
	keys, err := seal.Parse(text)
	if err != nil {
		p.fail("LEADRELAY_DATA_KEYS", err.Error()) // names entries and ids, never key material
		return d
	}
	d.Keys = keys
	return d
}

func (p *parser) trace() Trace {
	p.section = SectionTrace
	t := Trace{
		Exporter:    p.str("OTEL_TRACES_EXPORTER", ""),
		Endpoint:    p.str("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		Protocol:    p.str("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
		ServiceName: p.str("OTEL_SERVICE_NAME", ""),
		Disabled:    p.bool("OTEL_SDK_DISABLED", false),
	}
	if e := p.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""); e != "" {
		t.Endpoint = e
	}
	return t
}
