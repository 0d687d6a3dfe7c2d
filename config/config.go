// Package config loads LeadRelay's settings once, from LEADRELAY_*
// environment variables, applies defaults, validates them and reports every
// problem at once. Everything else receives a Config, or the one section
// it needs; nothing else reads the environment.
//
// A Config has one section per concern: Redis, Queue, CRM, Worker, Intake,
// Server, Ops, Notify and Log. internal/app maps each section to the
// Options of the package it configures, so those packages never import
// config. A default a package also applies to its own zero Options is that
// package's constant (worker.DefaultConcurrency, lead.DefaultQueue…), which
// Load uses: each default is defined once.
//
// Every secret setting NAME (LEADRELAY_REDIS_URL, LEADRELAY_CRM_APIKEY,
// LEADRELAY_UI_PASSWORD, LEADRELAY_NOTIFY_URL, LEADRELAY_SITE_SECRETS,
// LEADRELAY_REDIS_SENTINEL_PASSWORD) may come instead from the file named
// by NAME_FILE, such as a systemd credential or a container secret, so it
// never sits in the process environment. The sites, with their keys, come
// from one YAML file instead (LEADRELAY_SITES_FILE; Site is its schema),
// which intake reloads while it runs: LoadSitesFile and ParseSitesFile
// check it as Load does.
package config

import (
	"net"
	"net/netip"
	"time"

	"leadrelay/internal/seal"
)

// Config is every setting of LeadRelay, by section. Each field's comment
// names its environment variable, its default and its meaning. The zero
// value is not usable; build one with Load.
type Config struct {
	// Redis is where LeadRelay's Redis lives and how writes wait for its
	// replicas (every role).
	Redis Redis
	// Queue is the lead queue every role shares.
	Queue Queue
	// CRM is the SalesMan CRM the workers deliver to.
	CRM CRM
	// Worker tunes delivery: retries, reconciliation, the circuit.
	Worker Worker
	// Intake is the sites, their limits and the backlog's bounds.
	Intake Intake
	// Server is the site-facing listener and the process's lifetime.
	Server Server
	// Ops is the operators' listener and its credentials.
	Ops Ops
	// Notify is the chat webhook told about dead leads (workers).
	Notify Notify
	// Log is the log's level and format.
	Log Log
	// Data is how a lead's personal data is kept at rest (every role).
	Data Data
	// Trace is whether the process exports OpenTelemetry traces (every
	// role; off by default).
	Trace Trace

	// Warnings are findings about the settings that do not stop a start,
	// such as a key file readable by everyone; Run logs each.
	Warnings []string

	// opsAddrSet records that LEADRELAY_OPS_ADDR was given, so that an
	// --addr override can re-derive its default.
	opsAddrSet bool
	// httpAddrSet records that LEADRELAY_HTTP_ADDR (or --addr) was given.
	httpAddrSet bool
}

// Queue is the asynq queue of lead tasks and what each task carries; the
// producer, the workers, the dead-letter store and ctl read it alike.
type Queue struct {
	// Name (LEADRELAY_QUEUE, default lead.DefaultQueue: leads) is the
	// asynq queue of lead tasks.
	Name string
	// MaxRetry (LEADRELAY_MAX_RETRY, default lead.DefaultMaxRetry: 80,
	// about 3 days with the default retry delays) is the failed attempts a
	// lead may spend before it is dead.
	MaxRetry int
	// DedupTTL (LEADRELAY_DEDUP_TTL, default lead.DefaultDedupTTL: 24h) is
	// how long a finished task's id is kept to collapse repeat submissions.
	DedupTTL time.Duration
	// KeylessWindow (LEADRELAY_KEYLESS_WINDOW, default
	// lead.DefaultKeylessWindow: 10m) is how long the identity of a lead
	// sent without an idempotency key lasts: the same content within it is
	// a double submit (one lead, the repeat counted), after it a new lead
	// that is delivered.
	KeylessWindow time.Duration
}

// CRM is the SalesMan CRM and how the fleet treats it.
type CRM struct {
	// URL (LEADRELAY_CRM_URL, default empty) is the SalesMan base URL, e.g.
	// https://crm.example.com. Empty runs the CRM simulator in-process (serve only).
	URL string
	// API (LEADRELAY_CRM_API, default v1) is the leads API version: v1 or v2.
	API string
	// JSON (LEADRELAY_CRM_JSON, default false) sends v2 requests as JSON
	// with the credentials in headers.
	JSON bool
	// Login (LEADRELAY_CRM_LOGIN) is the CRM user the relay logs in as.
	Login string
	// APIKey (LEADRELAY_CRM_APIKEY, or the file named by
	// LEADRELAY_CRM_APIKEY_FILE) is the CRM account's API key. Secret.
	APIKey string
	// IPInDescription (LEADRELAY_CRM_IP_IN_DESCRIPTION, default true)
	// appends a v2 lead's ip to its description as the last line, since
	// the CRM's v2 add never stores ip.
	IPInDescription bool
	// ReplaceEmoji (LEADRELAY_CRM_REPLACE_EMOJI, default true) replaces
	// 4-byte characters (emoji), which the CRM stores as "????", with
	// U+FFFD before sending.
	ReplaceEmoji bool
	// Timeout (LEADRELAY_CRM_TIMEOUT, default crmclient.DefaultTimeout:
	// 30s) bounds one CRM request.
	Timeout time.Duration
	// RateLimit (LEADRELAY_CRM_RATE_LIMIT, default 0) is the most CRM
	// requests per second across all workers; 0 means no limit (the
	// adaptive concurrency limit already keeps the CRM within what it does).
	RateLimit float64
	// MaxConcurrent (LEADRELAY_CRM_MAX_CONCURRENT, default 32) is the most CRM
	// requests in flight across all workers; 0 means no limit. With
	// Adaptive it is the ceiling of the adaptive limit.
	MaxConcurrent int
	// Adaptive (LEADRELAY_CRM_ADAPTIVE, default true) makes the fleet
	// find the CRM's best concurrency from its goodput and errors, starting
	// at 2 and never above MaxConcurrent, so a small CRM is not driven
	// into collapse and a big one is not held back.
	Adaptive bool
}

// Embedded reports whether the CRM is the in-process simulator.
func (c CRM) Embedded() bool { return c.URL == "" }

// Worker tunes the delivery of leads. Its defaults are the worker
// package's own (worker.Default*).
type Worker struct {
	// Concurrency (LEADRELAY_CONCURRENCY, default 10) is deliveries in
	// flight per worker process.
	Concurrency int
	// PollInterval (LEADRELAY_POLL_INTERVAL, default 5s) is how often an
	// idle worker looks for leads it was not woken for (intake wakes the
	// workers with each lead it enqueues). Each look is six Redis commands.
	PollInterval time.Duration
	// RetryInitial (LEADRELAY_RETRY_INITIAL, default 10s) is the first retry delay.
	RetryInitial time.Duration
	// RetryMultiplier (LEADRELAY_RETRY_MULTIPLIER, default 2) grows each delay.
	RetryMultiplier float64
	// RetryMaxDelay (LEADRELAY_RETRY_MAX_DELAY, default 1h) caps one delay.
	RetryMaxDelay time.Duration
	// DeliveredTTL (LEADRELAY_DELIVERED_TTL, default 720h) is how long the
	// delivered marker of a lead is kept to stop a second CRM add.
	DeliveredTTL time.Duration
	// ReconcileUnknown (LEADRELAY_RECONCILE_UNKNOWN, default resend) is what
	// to do when the CRM cannot tell whether an ambiguous add stored the lead:
	// resend (never lose a lead) or dead (park it for a human).
	ReconcileUnknown string
	// ReconcileAfter (LEADRELAY_RECONCILE_AFTER, default 2m, at least
	// LEADRELAY_CRM_TIMEOUT) is the least time between an add whose outcome
	// is unknown and the look-up that settles it. A PHP CRM behind nginx
	// may keep working on a request after LeadRelay gave up on it
	// (php-fpm's request_terminate_timeout is off by default), so it is
	// longer than the CRM timeout.
	ReconcileAfter time.Duration
	// BreakerThreshold (LEADRELAY_BREAKER_THRESHOLD, default 5) consecutive
	// transient CRM failures open the circuit shared by all workers.
	BreakerThreshold int
	// BreakerCooldown (LEADRELAY_BREAKER_COOLDOWN, default 30s) is how long the
	// circuit stays open before a probe.
	BreakerCooldown time.Duration
	// DeadRetention (LEADRELAY_DEAD_RETENTION, default 0: keep) is how long
	// a dead lead, which holds personal data, is kept in the dead-letter
	// store and asynq's archive; workers delete older ones every hour.
	DeadRetention time.Duration
	// AuditInterval (LEADRELAY_AUDIT_INTERVAL, default
	// audit.DefaultInterval: 10m) is how often one worker of the fleet
	// reads back from the CRM what was delivered and counts duplicates and
	// missing leads (package audit); 0 turns the audit off.
	AuditInterval time.Duration
	// AuditWindow (LEADRELAY_AUDIT_WINDOW, default audit.DefaultWindow:
	// 1h) is how far back an audit looks; asynq keeps delivered tasks for
	// LEADRELAY_DEDUP_TTL, so it may not be longer.
	AuditWindow time.Duration
}

// Intake is what the site-facing intake accepts, from whom, and how much.
type Intake struct {
	// Sites are the sites allowed to send leads, with their keys and
	// settings: from SitesFile, or else from LEADRELAY_SITES
	// ("site=key,site2=key2"), LEADRELAY_SITE_ORIGINS
	// ("site=https://a.example|https://b.example,…": browser origins,
	// CORS) and LEADRELAY_SITE_SECRETS or _FILE ("site=secret,…": HMAC
	// signatures), one key per site. Setting the file and any of the
	// variables is refused. Secret.
	Sites Sites
	// SitesFile (LEADRELAY_SITES_FILE, default empty) is the sites file: a
	// YAML file holding every site's keys and settings (see Site and
	// README.md, "The sites file"), which intake reloads on SIGHUP and when
	// it changes, keeping the running sites when the new file is refused.
	SitesFile string
	// SitesPoll (LEADRELAY_SITES_FILE_POLL, default 2s) is how often intake
	// looks whether the sites file changed; 0 reloads it on SIGHUP only.
	SitesPoll time.Duration
	// SiteRateLimit (LEADRELAY_SITE_RATE_LIMIT, default 10) is the lead
	// requests per second one site may make, unless the sites file gives
	// the site its own rate_limit; 0 means no limit.
	SiteRateLimit float64
	// SiteLeadRateLimit (LEADRELAY_SITE_LEAD_RATE_LIMIT, default 100) is the
	// leads per second one site may hand in through POST /v1/leads/batch
	// (a batch counts once against SiteRateLimit), with a burst of one full
	// batch; 0 means no limit.
	SiteLeadRateLimit float64
	// GlobalRateLimit (LEADRELAY_GLOBAL_RATE_LIMIT, default 200) caps intake
	// requests per second over all sites; 0 means no limit.
	GlobalRateLimit float64
	// SiteMaxQueued (LEADRELAY_SITE_MAX_QUEUED, default 10000) is the most
	// undelivered leads one site may have waiting; past it the site's new
	// leads get 429. 0 means no cap.
	SiteMaxQueued int64
	// MaxQueued (LEADRELAY_MAX_QUEUED, default 100000) is the most
	// undelivered leads of all sites together; past it new leads get 503.
	// 0 means no cap.
	MaxQueued int64
	// MemoryGuard (LEADRELAY_REDIS_MEMORY_GUARD, default 0.8) is the share
	// of Redis's maxmemory past which intake refuses new leads (503), so
	// that the leads already in can still be delivered and marked. 0 turns
	// the guard off; it needs maxmemory set in Redis.
	MemoryGuard float64
	// SiteMemoryShare (LEADRELAY_SITE_MEMORY_SHARE, default 0.25) is the
	// share of the memory guard's bound (MemoryGuard × maxmemory) one site
	// may keep in Redis: its undelivered leads and the delivered ones kept
	// for LEADRELAY_DEDUP_TTL, counted in bytes when admitted. Past it the
	// site's new leads get 429, while other sites' are still taken. 0
	// turns it off; it needs maxmemory and the guard.
	SiteMemoryShare float64
}

// Server is the site-facing listener and what every process shares: its
// connections, the proxies it trusts, its graceful stop.
type Server struct {
	// HTTPAddr (LEADRELAY_HTTP_ADDR, default 127.0.0.1:8080) is the
	// site-facing listener: intake and health, nothing for operators.
	HTTPAddr string
	// MaxConnections (LEADRELAY_MAX_CONNECTIONS, default 1024) caps the open
	// connections of each listener; more wait in the kernel's backlog.
	// 0 means no cap.
	MaxConnections int
	// MaxConnectionsPerClient (LEADRELAY_MAX_CONNECTIONS_PER_CLIENT,
	// default 64) caps the connections one client (an IPv4 address, an
	// IPv6 /64; not a trusted proxy) holds on each listener, so that its
	// idle keep-alive connections cannot fill MaxConnections. 0 means no
	// cap.
	MaxConnectionsPerClient int
	// TrustedProxies (LEADRELAY_TRUSTED_PROXIES, "10.0.0.0/8,192.0.2.7")
	// are the reverse proxies whose X-Forwarded-For names the client, for
	// per-client limits on both listeners. Empty: forwarded headers are
	// ignored.
	TrustedProxies []netip.Prefix
	// ShutdownTimeout (LEADRELAY_SHUTDOWN_TIMEOUT, default 30s) bounds a
	// graceful stop.
	ShutdownTimeout time.Duration
}

// Ops is the operators' listener: the UI, /ops/*, /metrics.
type Ops struct {
	// Addr (LEADRELAY_OPS_ADDR, default 127.0.0.1:8081, or port 0 when
	// LEADRELAY_HTTP_ADDR's port is 0) is the operators' listener. Never
	// the site-facing one.
	Addr string
	// Hosts (LEADRELAY_OPS_HOSTS, "ops.example.com,relay") are the host
	// names the ops listener answers besides localhost and IP addresses:
	// any other Host is refused, against DNS rebinding.
	Hosts []string
	// NoAuth (LEADRELAY_OPS_NO_AUTH, default false) opens the ops
	// listener without credentials outside the embedded demo, with a
	// warning at start. Otherwise it needs User and Password and answers
	// 401 without them.
	NoAuth bool
	// User and Password (LEADRELAY_UI_USER, LEADRELAY_UI_PASSWORD or _FILE) are
	// the basic-auth credentials of the ops listener. Outside the embedded
	// demo the password has at least 12 characters and is no placeholder.
	// Unset: the ops listener answers 401, unless NoAuth, or in the demo,
	// where it is open (on loopback by default). Password is secret.
	User, Password string
	// ReadOnly (LEADRELAY_UI_READONLY, default false) hides the UI's actions.
	ReadOnly bool
}

// Notify is where operators are told about dead leads and CRM
// configuration problems.
type Notify struct {
	// URL (LEADRELAY_NOTIFY_URL or _FILE, default empty: none) is an incoming
	// webhook (Slack, Mattermost) told when a lead dies, when the CRM has a
	// configuration problem, and when an outage opens or closes the CRM
	// circuit. Secret: it holds the hook's token.
	URL string
}

// Data is how a lead's personal data is kept in Redis: sealed under data
// keys, or, on purpose, in plaintext.
type Data struct {
	// Keys (LEADRELAY_DATA_KEYS, or the file named by
	// LEADRELAY_DATA_KEYS_FILE) are the data keys, "id:base64-of-32-bytes"
	// separated by commas: the first seals every lead's fields in Redis,
	// every one opens them. Rotate by putting a new key first, and drop an
	// old one after `leadrelay ctl rekey`. Required outside the embedded
	// demo, which generates a key of its own (nil here). Secret.
	Keys *seal.Keyring
	// Unencrypted (LEADRELAY_DATA_UNENCRYPTED, default false) runs without
	// data keys on purpose: leads are kept in Redis in plaintext, as
	// before LeadRelay sealed them.
	Unencrypted bool
	// IDKey (LEADRELAY_ID_KEY, or the file named by LEADRELAY_ID_KEY_FILE;
	// base64 of 32 bytes) keys the identity and id of every lead sent
	// without an idempotency key (lead.IDKey), so neither can be computed
	// from a lead's content. Every intake needs the same one, and it is
	// never rotated. Nil (unset): derived from the oldest data key, or a
	// random one per process without data keys. Secret.
	IDKey []byte
}

// Log is how the process logs.
type Log struct {
	// Level (LEADRELAY_LOG_LEVEL, default info) is debug, info, warn or
	// error. Personal data is logged only at debug.
	Level string
	// Format (LEADRELAY_LOG_FORMAT) is json or console; the default is
	// json, or console in the embedded demo mode (no LEADRELAY_REDIS_URL).
	Format string
}

// Trace is the part of the standard OpenTelemetry variables LeadRelay
// reads itself, to decide whether to trace at all; the SDK reads the rest
// (headers, timeouts, TLS, sampler, batching) from the environment when
// tracing is on (package tracing).
type Trace struct {
	// Exporter (OTEL_TRACES_EXPORTER) is otlp or none. Unset, tracing is
	// on when an OTLP endpoint is set, and off otherwise: LeadRelay sends
	// nothing anywhere nobody named.
	Exporter string
	// Endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which wins) is the OTLP/HTTP
	// collector, e.g. http://127.0.0.1:4318; without either and with
	// OTEL_TRACES_EXPORTER=otlp, the SDK's default, http://localhost:4318.
	Endpoint string
	// Protocol (OTEL_EXPORTER_OTLP_PROTOCOL, default http/protobuf) must
	// be http/protobuf: the relay links the OTLP/HTTP exporter only.
	Protocol string
	// ServiceName (OTEL_SERVICE_NAME) names the process to the backend;
	// empty: leadrelay-<command>, e.g. leadrelay-worker.
	ServiceName string
	// Disabled (OTEL_SDK_DISABLED, default false) turns tracing off
	// whatever else is set.
	Disabled bool
}

// Enabled reports whether the process exports traces.
func (t Trace) Enabled() bool {
	switch {
	case t.Disabled || t.Exporter == "none":
		return false
	case t.Exporter == "otlp":
		return true
	}
	return t.Endpoint != ""
}

// OpsAddrDefault is LEADRELAY_OPS_ADDR's default.
const OpsAddrDefault = "127.0.0.1:8081"

// SetHTTPAddr overrides LEADRELAY_HTTP_ADDR (the --addr flag) and
// re-derives LEADRELAY_OPS_ADDR's default from it when that is not set.
func (c *Config) SetHTTPAddr(addr string) {
	c.Server.HTTPAddr = addr
	c.httpAddrSet = true
	if !c.opsAddrSet {
		c.Ops.Addr = defaultOpsAddr(addr)
	}
}

// HTTPAddrSet reports whether LEADRELAY_HTTP_ADDR (or --addr) chose the
// site listener's address; false: it is the default.
func (c Config) HTTPAddrSet() bool { return c.httpAddrSet }

// OpsAddrSet reports whether LEADRELAY_OPS_ADDR chose the ops listener's
// address; false: it is the default.
func (c Config) OpsAddrSet() bool { return c.opsAddrSet }

// defaultOpsAddr is OpsAddrDefault, or a free loopback port when the site
// listener takes a free port: tests and extra workers on one host then
// never collide on the ops port.
func defaultOpsAddr(httpAddr string) string {
	if _, port, err := net.SplitHostPort(httpAddr); err == nil && port == "0" {
		host, _, _ := net.SplitHostPort(OpsAddrDefault)
		return net.JoinHostPort(host, "0")
	}
	return OpsAddrDefault
}

// EmbeddedRedis reports whether Redis is the in-process, non-durable miniredis.
func (c Config) EmbeddedRedis() bool { return c.Redis.Mode == RedisEmbedded }

// EmbeddedCRM reports whether the CRM is the in-process simulator.
func (c Config) EmbeddedCRM() bool { return c.CRM.Embedded() }

// Load reads the configuration through getenv (os.Getenv in main, a map in
// tests), applies defaults and validates. The error lists every problem.
func Load(getenv func(string) string) (Config, error) {
	c, problems := LoadLenient(getenv)
	if len(problems) > 0 {
		return Config{}, problems.Err()
	}
	return c, nil
}

// LoadLenient is Load for commands that need only some settings (ctl): it
// returns the configuration with defaults in place of bad values, and every
// problem, which the caller filters with Problems.For.
func LoadLenient(getenv func(string) string) (Config, Problems) {
	c, p := load(getenv)
	return c, p.errs
}

func load(getenv func(string) string) (Config, *parser) {
	p := &parser{getenv: getenv}
	c := Config{
		Redis:  p.redis(),
		Queue:  p.queue(),
		CRM:    p.crm(),
		Worker: p.worker(),
		Intake: p.intake(),
		Server: p.server(),
		Ops:    p.ops(),
		Notify: p.notify(),
		Log:    p.log(),
		Data:   p.data(),
		Trace:  p.trace(),
	}
	c.httpAddrSet = getenv("LEADRELAY_HTTP_ADDR") != ""
	if c.Ops.Addr == "" {
		c.Ops.Addr = defaultOpsAddr(c.Server.HTTPAddr)
	} else {
		c.opsAddrSet = true
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
		if c.EmbeddedRedis() {
			c.Log.Format = "console" // the demo mode is for people at a terminal
		}
	}
	c.Intake.Sites = p.sites(&c, p.siteKeys, p.siteOrigins, p.siteSecrets)
	c.validate(p)
	c.Warnings = p.warnings
	return c, p
}
