// Package config loads LeadRelay's settings once, from LEADRELAY_*
// environment variables, applies defaults, validates them and reports every
// problem at once. Everything else receives a Config; nothing else reads the
// environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of LeadRelay. Each field's comment names its
// environment variable, its default and its meaning. The zero value is not
// usable; build one with Load.
type Config struct {
	// RedisURL (LEADRELAY_REDIS_URL, default empty) is redis://[user:pass@]host:port/db,
	// redis-sentinel://[user:pass@]h1:26379,h2:26379/db?master=NAME or
	// redis-cluster://[user:pass@]h1:7000,h2:7001 (rediss… for TLS). Empty
	// (and no LEADRELAY_REDIS_CLUSTER) runs an in-process, non-durable
	// miniredis (serve only). Secret: it may hold a password.
	RedisURL string
	// Redis is RedisURL, or LEADRELAY_REDIS_CLUSTER (h1:7000,h2:7001, a
	// cluster without credentials), parsed; with
	// LEADRELAY_REDIS_SENTINEL_PASSWORD for sentinels that require one.
	Redis Redis
	// RedisWaitReplicas (LEADRELAY_REDIS_WAIT_REPLICAS, default 0) makes
	// workers wait for that many replicas to hold a lead's "sending"
	// record before each CRM add (so a failover cannot forget an add was
	// sent), and intake
	// wait until this many replicas hold a lead before acknowledging it.
	RedisWaitReplicas int
	// RedisWaitTimeout (LEADRELAY_REDIS_WAIT_TIMEOUT, default 1s) bounds that wait.
	RedisWaitTimeout time.Duration

	// CRMURL (LEADRELAY_CRM_URL, default empty) is the SalesMan base URL, e.g.
	// https://crm.example.com. Empty runs the CRM simulator in-process (serve only).
	CRMURL string
	// CRMAPI (LEADRELAY_CRM_API, default v1) is the leads API version: v1 or v2.
	CRMAPI string
	// CRMJSON (LEADRELAY_CRM_JSON, default false) sends v2 requests as JSON
	// with the credentials in headers.
	CRMJSON bool
	// CRMLogin (LEADRELAY_CRM_LOGIN) is the CRM user the relay logs in as.
	CRMLogin string
	// CRMAPIKey (LEADRELAY_CRM_APIKEY, or the file named by
	// LEADRELAY_CRM_APIKEY_FILE) is the CRM account's API key. Secret.
	CRMAPIKey string
	// CRMIPInDescription (LEADRELAY_CRM_IP_IN_DESCRIPTION, default true)
	// appends a v2 lead's ip to its description as the last line, since
	// the CRM's v2 add never stores ip.
	CRMIPInDescription bool
	// CRMReplaceEmoji (LEADRELAY_CRM_REPLACE_EMOJI, default true) replaces
	// 4-byte characters (emoji), which the CRM stores as "????", with
	// U+FFFD before sending.
	CRMReplaceEmoji bool
	// CRMTimeout (LEADRELAY_CRM_TIMEOUT, default 30s) bounds one CRM request.
	CRMTimeout time.Duration
	// CRMRateLimit (LEADRELAY_CRM_RATE_LIMIT, default 0) is the most CRM
	// requests per second across all workers; 0 means no limit (the
	// adaptive concurrency limit already keeps the CRM within what it does).
	CRMRateLimit float64
	// CRMMaxConcurrent (LEADRELAY_CRM_MAX_CONCURRENT, default 32) is the most CRM
	// requests in flight across all workers; 0 means no limit. With
	// CRMAdaptive it is the ceiling of the adaptive limit.
	CRMMaxConcurrent int
	// CRMAdaptive (LEADRELAY_CRM_ADAPTIVE, default true) makes the fleet
	// find the CRM's best concurrency from its goodput and errors, starting
	// at 2 and never above CRMMaxConcurrent, so a small CRM is not driven
	// into collapse and a big one is not held back.
	CRMAdaptive bool

	// HTTPAddr (LEADRELAY_HTTP_ADDR, default 127.0.0.1:8080) is the
	// site-facing listener: intake and health, nothing for operators.
	HTTPAddr string
	// OpsAddr (LEADRELAY_OPS_ADDR, default 127.0.0.1:8081, or port 0 when
	// LEADRELAY_HTTP_ADDR's port is 0) is the operators' listener: the UI,
	// /ops/*, /metrics. Never the site-facing one.
	OpsAddr string
	// OpsHosts (LEADRELAY_OPS_HOSTS, "ops.example.com,relay") are the host
	// names the ops listener answers besides localhost and IP addresses:
	// any other Host is refused, against DNS rebinding.
	OpsHosts []string
	// OpsNoAuth (LEADRELAY_OPS_NO_AUTH, default false) opens the ops
	// listener without credentials outside the embedded demo, with a
	// warning at start. Otherwise it needs LEADRELAY_UI_USER/PASSWORD and
	// answers 401 without them.
	OpsNoAuth bool
	// MaxConnections (LEADRELAY_MAX_CONNECTIONS, default 1024) caps the open
	// connections of each listener; more wait in the kernel's backlog.
	// 0 means no cap.
	MaxConnections int
	// opsAddrSet records that LEADRELAY_OPS_ADDR was given, so that an
	// --addr override can re-derive its default.
	opsAddrSet bool
	// Sites (LEADRELAY_SITES, "site=key,site2=key2") are the sites allowed to
	// send leads and their relay keys. Secret.
	Sites map[string]string
	// SiteOrigins (LEADRELAY_SITE_ORIGINS, "site=https://a.example|https://b.example,…")
	// are the browser origins allowed per site (CORS). Empty: no CORS.
	SiteOrigins map[string][]string
	// SiteSecrets (LEADRELAY_SITE_SECRETS, "site=secret,…") turn on HMAC body
	// signatures (X-LeadRelay-Signature) for those sites. Secret.
	SiteSecrets map[string]string
	// SiteRateLimit (LEADRELAY_SITE_RATE_LIMIT, default 10) is the lead
	// requests per second one site may make; 0 means no limit.
	SiteRateLimit float64
	// SiteLeadRateLimit (LEADRELAY_SITE_LEAD_RATE_LIMIT, default 100) is the
	// leads per second one site may hand in through POST /v1/leads/batch
	// (a batch counts once against SiteRateLimit), with a burst of one full
	// batch; 0 means no limit.
	SiteLeadRateLimit float64
	// GlobalRateLimit (LEADRELAY_GLOBAL_RATE_LIMIT, default 200) caps intake
	// requests per second over all sites; 0 means no limit.
	GlobalRateLimit float64

	// TrustedProxies (LEADRELAY_TRUSTED_PROXIES, "10.0.0.0/8,192.0.2.7")
	// are the reverse proxies whose X-Forwarded-For names the client, for
	// per-client limits. Empty: forwarded headers are ignored.
	TrustedProxies []netip.Prefix

	// UIUser and UIPassword (LEADRELAY_UI_USER, LEADRELAY_UI_PASSWORD) are
	// the basic-auth credentials of the ops listener. Outside the embedded
	// demo the password has at least 12 characters and is no placeholder.
	// Unset: the ops listener answers 401, unless LEADRELAY_OPS_NO_AUTH,
	// or in the demo, where it is open (on loopback by default).
	UIUser, UIPassword string
	// NotifyURL (LEADRELAY_NOTIFY_URL, default empty: none) is an incoming
	// webhook (Slack, Mattermost) told when a lead dies or the CRM has a
	// configuration problem. Secret: it holds the hook's token.
	NotifyURL string

	// UIReadOnly (LEADRELAY_UI_READONLY, default false) hides the UI's actions.
	UIReadOnly bool

	// Queue (LEADRELAY_QUEUE, default leads) is the asynq queue of lead tasks.
	Queue string
	// Concurrency (LEADRELAY_CONCURRENCY, default 10) is deliveries in flight per worker process.
	Concurrency int
	// RetryInitial (LEADRELAY_RETRY_INITIAL, default 10s) is the first retry delay.
	RetryInitial time.Duration
	// RetryMultiplier (LEADRELAY_RETRY_MULTIPLIER, default 2) grows each delay.
	RetryMultiplier float64
	// RetryMaxDelay (LEADRELAY_RETRY_MAX_DELAY, default 1h) caps one delay.
	RetryMaxDelay time.Duration
	// MaxRetry (LEADRELAY_MAX_RETRY, default 80, about 3 days with the
	// defaults above) is the failed attempts a lead may spend before it is dead.
	MaxRetry int
	// DedupTTL (LEADRELAY_DEDUP_TTL, default 24h) is how long a finished
	// task's id is kept to collapse repeat submissions.
	DedupTTL time.Duration
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
	// SiteMaxQueued (LEADRELAY_SITE_MAX_QUEUED, default 10000) is the most
	// undelivered leads one site may have waiting; past it the site's new
	// leads get 429. 0 means no cap.
	SiteMaxQueued int64
	// MaxQueued (LEADRELAY_MAX_QUEUED, default 100000) is the most
	// undelivered leads of all sites together; past it new leads get 503.
	// 0 means no cap.
	MaxQueued int64
	// RedisMemoryGuard (LEADRELAY_REDIS_MEMORY_GUARD, default 0.8) is the
	// share of Redis's maxmemory past which intake refuses new leads (503),
	// so that the leads already in can still be delivered and marked.
	// 0 turns the guard off; it needs maxmemory set in Redis.
	RedisMemoryGuard float64
	// DeadRetention (LEADRELAY_DEAD_RETENTION, default 0: keep) is how long
	// a dead lead, which holds personal data, is kept in the dead-letter
	// store and asynq's archive; workers delete older ones every hour.
	DeadRetention time.Duration
	// ShutdownTimeout (LEADRELAY_SHUTDOWN_TIMEOUT, default 30s) bounds a
	// graceful stop.
	ShutdownTimeout time.Duration

	// LogLevel (LEADRELAY_LOG_LEVEL, default info) is debug, info, warn or error.
	// Personal data is logged only at debug.
	LogLevel string
	// LogFormat (LEADRELAY_LOG_FORMAT) is json or console; the default is
	// json, or console in the embedded demo mode (no LEADRELAY_REDIS_URL).
	LogFormat string

	// Warnings are findings about the settings that do not stop a start,
	// such as a key file readable by everyone; Run logs each.
	Warnings []string
}

// OpsAddrDefault is LEADRELAY_OPS_ADDR's default.
const OpsAddrDefault = "127.0.0.1:8081"

// SetHTTPAddr overrides LEADRELAY_HTTP_ADDR (the --addr flag) and
// re-derives LEADRELAY_OPS_ADDR's default from it when that is not set.
func (c *Config) SetHTTPAddr(addr string) {
	c.HTTPAddr = addr
	if !c.opsAddrSet {
		c.OpsAddr = defaultOpsAddr(addr)
	}
}

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
func (c Config) EmbeddedCRM() bool { return c.CRMURL == "" }

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
		RedisURL:           p.str("LEADRELAY_REDIS_URL", ""),
		RedisWaitReplicas:  p.int("LEADRELAY_REDIS_WAIT_REPLICAS", 0),
		RedisWaitTimeout:   p.dur("LEADRELAY_REDIS_WAIT_TIMEOUT", time.Second),
		CRMURL:             p.str("LEADRELAY_CRM_URL", ""),
		CRMAPI:             p.str("LEADRELAY_CRM_API", "v1"),
		CRMJSON:            p.bool("LEADRELAY_CRM_JSON", false),
		CRMLogin:           p.str("LEADRELAY_CRM_LOGIN", ""),
		CRMAPIKey:          p.secret("LEADRELAY_CRM_APIKEY"),
		CRMTimeout:         p.dur("LEADRELAY_CRM_TIMEOUT", 30*time.Second),
		CRMIPInDescription: p.bool("LEADRELAY_CRM_IP_IN_DESCRIPTION", true),
		CRMReplaceEmoji:    p.bool("LEADRELAY_CRM_REPLACE_EMOJI", true),
		CRMRateLimit:       p.float("LEADRELAY_CRM_RATE_LIMIT", 0),
		CRMMaxConcurrent:   p.int("LEADRELAY_CRM_MAX_CONCURRENT", 32),
		CRMAdaptive:        p.bool("LEADRELAY_CRM_ADAPTIVE", true),
		HTTPAddr:           p.str("LEADRELAY_HTTP_ADDR", "127.0.0.1:8080"),
		OpsAddr:            p.str("LEADRELAY_OPS_ADDR", ""),
		OpsHosts:           p.list("LEADRELAY_OPS_HOSTS"),
		OpsNoAuth:          p.bool("LEADRELAY_OPS_NO_AUTH", false),
		MaxConnections:     p.int("LEADRELAY_MAX_CONNECTIONS", 1024),
		Sites:              p.pairs("LEADRELAY_SITES"),
		SiteOrigins:        p.origins("LEADRELAY_SITE_ORIGINS"),
		SiteSecrets:        p.pairs("LEADRELAY_SITE_SECRETS"),
		SiteRateLimit:      p.float("LEADRELAY_SITE_RATE_LIMIT", 10),
		SiteLeadRateLimit:  p.float("LEADRELAY_SITE_LEAD_RATE_LIMIT", 100),
		GlobalRateLimit:    p.float("LEADRELAY_GLOBAL_RATE_LIMIT", 200),
		TrustedProxies:     p.prefixes("LEADRELAY_TRUSTED_PROXIES"),
		UIUser:             p.str("LEADRELAY_UI_USER", ""),
		UIPassword:         p.secretStr("LEADRELAY_UI_PASSWORD"),
		UIReadOnly:         p.bool("LEADRELAY_UI_READONLY", false),
		NotifyURL:          p.secretStr("LEADRELAY_NOTIFY_URL"),
		Queue:              p.str("LEADRELAY_QUEUE", "leads"),
		Concurrency:        p.int("LEADRELAY_CONCURRENCY", 10),
		RetryInitial:       p.dur("LEADRELAY_RETRY_INITIAL", 10*time.Second),
		RetryMultiplier:    p.float("LEADRELAY_RETRY_MULTIPLIER", 2),
		RetryMaxDelay:      p.dur("LEADRELAY_RETRY_MAX_DELAY", time.Hour),
		MaxRetry:           p.int("LEADRELAY_MAX_RETRY", 80),
		DedupTTL:           p.dur("LEADRELAY_DEDUP_TTL", 24*time.Hour),
		DeliveredTTL:       p.dur("LEADRELAY_DELIVERED_TTL", 30*24*time.Hour),
		ReconcileUnknown:   p.str("LEADRELAY_RECONCILE_UNKNOWN", "resend"),
		ReconcileAfter:     p.dur("LEADRELAY_RECONCILE_AFTER", 2*time.Minute),
		BreakerThreshold:   p.int("LEADRELAY_BREAKER_THRESHOLD", 5),
		BreakerCooldown:    p.dur("LEADRELAY_BREAKER_COOLDOWN", 30*time.Second),
		ShutdownTimeout:    p.dur("LEADRELAY_SHUTDOWN_TIMEOUT", 30*time.Second),
		DeadRetention:      p.dur("LEADRELAY_DEAD_RETENTION", 0),
		SiteMaxQueued:      int64(p.int("LEADRELAY_SITE_MAX_QUEUED", 10000)),
		MaxQueued:          int64(p.int("LEADRELAY_MAX_QUEUED", 100000)),
		RedisMemoryGuard:   p.float("LEADRELAY_REDIS_MEMORY_GUARD", 0.8),
		LogLevel:           p.str("LEADRELAY_LOG_LEVEL", "info"),
		LogFormat:          p.str("LEADRELAY_LOG_FORMAT", ""),
	}
	c.Redis = p.parseRedis(c.RedisURL, p.str("LEADRELAY_REDIS_CLUSTER", ""), p.secret("LEADRELAY_REDIS_SENTINEL_PASSWORD"))
	if c.OpsAddr == "" {
		c.OpsAddr = defaultOpsAddr(c.HTTPAddr)
	} else {
		c.opsAddrSet = true
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
		if c.EmbeddedRedis() {
			c.LogFormat = "console" // the demo mode is for people at a terminal
		}
	}
	c.validate(p)
	c.Warnings = p.warnings
	return c, p
}

func (c *Config) validate(p *parser) {
	if c.CRMURL != "" {
		u, err := url.Parse(c.CRMURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("LEADRELAY_CRM_URL", "must be an http(s) URL such as https://crm.example.com"+p.gotURL("LEADRELAY_CRM_URL"))
		} else if u.User != nil || u.RawQuery != "" {
			p.fail("LEADRELAY_CRM_URL", "must not carry credentials or a query; use LEADRELAY_CRM_LOGIN and LEADRELAY_CRM_APIKEY")
		}
		if c.CRMLogin == "" {
			p.fail("LEADRELAY_CRM_LOGIN", "is required with LEADRELAY_CRM_URL")
		}
		if c.CRMAPIKey == "" {
			p.fail("LEADRELAY_CRM_APIKEY", "is required with LEADRELAY_CRM_URL (or set LEADRELAY_CRM_APIKEY_FILE)")
		}
	}
	if c.NotifyURL != "" {
		if u, err := url.Parse(c.NotifyURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("LEADRELAY_NOTIFY_URL", "must be an http(s) URL such as https://hooks.slack.com/services/… (not quoted: it holds a token)")
		}
	}
	if c.CRMAPI != "v1" && c.CRMAPI != "v2" {
		p.fail("LEADRELAY_CRM_API", "must be v1 or v2"+p.got("LEADRELAY_CRM_API"))
	}
	if c.CRMJSON && c.CRMAPI != "v2" {
		p.fail("LEADRELAY_CRM_JSON", "needs LEADRELAY_CRM_API=v2, got "+strconv.Quote(c.CRMAPI))
	}
	keyOwner := map[string]string{}
	for _, site := range sortedKeys(c.Sites) {
		key := c.Sites[site]
		if len(key) < 16 {
			p.fail("LEADRELAY_SITES", fmt.Sprintf("key of site %q is shorter than 16 characters", site))
		}
		if c.CRMAPIKey != "" && key == c.CRMAPIKey {
			p.fail("LEADRELAY_SITES", fmt.Sprintf("site %q uses the CRM's API key; give every site its own key", site))
		}
		if other, dup := keyOwner[key]; dup {
			p.fail("LEADRELAY_SITES", fmt.Sprintf("sites %q and %q share one key; give every site its own key", other, site))
		}
		keyOwner[key] = site
	}
	c.validateSecrets(p)
	for site := range c.SiteOrigins {
		if _, ok := c.Sites[site]; !ok {
			p.fail("LEADRELAY_SITE_ORIGINS", fmt.Sprintf("names site %q, which is not in LEADRELAY_SITES", site))
		}
	}
	for site := range c.SiteSecrets {
		if _, ok := c.Sites[site]; !ok {
			p.fail("LEADRELAY_SITE_SECRETS", fmt.Sprintf("names site %q, which is not in LEADRELAY_SITES", site))
		}
	}
	if (c.UIUser == "") != (c.UIPassword == "") {
		p.fail("LEADRELAY_UI_USER", "and LEADRELAY_UI_PASSWORD must be set together")
	}
	if c.OpsNoAuth && c.UIUser != "" {
		p.fail("LEADRELAY_OPS_NO_AUTH", "and LEADRELAY_UI_USER are both set; set one")
	}
	if c.OpsAddr == c.HTTPAddr && !strings.HasSuffix(c.OpsAddr, ":0") {
		p.fail("LEADRELAY_OPS_ADDR", "must differ from LEADRELAY_HTTP_ADDR: operator routes never share the site-facing listener")
	}
	for _, h := range c.OpsHosts {
		if strings.ContainsAny(h, "/:@ ") {
			p.fail("LEADRELAY_OPS_HOSTS", fmt.Sprintf("entry %q must be a bare host name such as ops.example.com", h))
		}
	}
	if c.SiteMaxQueued < 0 || c.MaxQueued < 0 {
		p.fail("LEADRELAY_SITE_MAX_QUEUED", "and LEADRELAY_MAX_QUEUED must not be negative (0 is no cap)")
	}
	if c.MaxQueued > 0 && c.SiteMaxQueued > c.MaxQueued {
		p.fail("LEADRELAY_SITE_MAX_QUEUED", "must not exceed LEADRELAY_MAX_QUEUED")
	}
	if c.RedisMemoryGuard < 0 || c.RedisMemoryGuard > 1 {
		p.fail("LEADRELAY_REDIS_MEMORY_GUARD", "must be a share between 0 (off) and 1, such as 0.8"+p.got("LEADRELAY_REDIS_MEMORY_GUARD"))
	}
	if c.DeadRetention < 0 {
		p.fail("LEADRELAY_DEAD_RETENTION", "must not be negative (0 keeps dead leads)")
	}
	if c.MaxConnections < 0 {
		p.fail("LEADRELAY_MAX_CONNECTIONS", "must not be negative")
	}
	if c.Queue == "" || strings.ContainsAny(c.Queue, " :{}") {
		p.fail("LEADRELAY_QUEUE", "must be a plain name such as leads"+p.got("LEADRELAY_QUEUE"))
	}
	p.positive("LEADRELAY_CONCURRENCY", float64(c.Concurrency))
	p.positive("LEADRELAY_MAX_RETRY", float64(c.MaxRetry))
	p.positive("LEADRELAY_BREAKER_THRESHOLD", float64(c.BreakerThreshold))
	p.positive("LEADRELAY_CRM_TIMEOUT", float64(c.CRMTimeout))
	p.positive("LEADRELAY_RETRY_INITIAL", float64(c.RetryInitial))
	p.positive("LEADRELAY_RETRY_MAX_DELAY", float64(c.RetryMaxDelay))
	p.positive("LEADRELAY_DEDUP_TTL", float64(c.DedupTTL))
	p.positive("LEADRELAY_DELIVERED_TTL", float64(c.DeliveredTTL))
	p.positive("LEADRELAY_BREAKER_COOLDOWN", float64(c.BreakerCooldown))
	p.positive("LEADRELAY_SHUTDOWN_TIMEOUT", float64(c.ShutdownTimeout))
	p.positive("LEADRELAY_REDIS_WAIT_TIMEOUT", float64(c.RedisWaitTimeout))
	if c.RetryMultiplier < 1 {
		p.fail("LEADRELAY_RETRY_MULTIPLIER", "must be at least 1"+p.got("LEADRELAY_RETRY_MULTIPLIER"))
	}
	if c.ReconcileAfter < c.CRMTimeout {
		p.fail("LEADRELAY_RECONCILE_AFTER", fmt.Sprintf("must not be shorter than LEADRELAY_CRM_TIMEOUT (%s < %s): the first request could still be in flight", c.ReconcileAfter, c.CRMTimeout))
	}
	if c.RetryMaxDelay < c.RetryInitial {
		p.fail("LEADRELAY_RETRY_MAX_DELAY", fmt.Sprintf("must not be shorter than LEADRELAY_RETRY_INITIAL (%s < %s)", c.RetryMaxDelay, c.RetryInitial))
	}
	if c.DeliveredTTL < c.DedupTTL {
		p.fail("LEADRELAY_DELIVERED_TTL", fmt.Sprintf("must not be shorter than LEADRELAY_DEDUP_TTL (%s < %s)", c.DeliveredTTL, c.DedupTTL))
	}
	for name, v := range map[string]float64{
		"LEADRELAY_CRM_RATE_LIMIT": c.CRMRateLimit, "LEADRELAY_SITE_RATE_LIMIT": c.SiteRateLimit,
		"LEADRELAY_GLOBAL_RATE_LIMIT": c.GlobalRateLimit, "LEADRELAY_CRM_MAX_CONCURRENT": float64(c.CRMMaxConcurrent),
		"LEADRELAY_REDIS_WAIT_REPLICAS": float64(c.RedisWaitReplicas), "LEADRELAY_SITE_LEAD_RATE_LIMIT": c.SiteLeadRateLimit,
	} {
		if v < 0 {
			p.fail(name, "must not be negative"+p.got(name))
		}
	}
	if c.RedisWaitReplicas > 0 && c.Redis.Mode == RedisCluster {
		p.fail("LEADRELAY_REDIS_WAIT_REPLICAS", "is not supported with a Redis Cluster yet: WAIT confirms the writes of one node, and a lead's task and records live on different nodes")
	}
	if c.ReconcileUnknown != "resend" && c.ReconcileUnknown != "dead" {
		p.fail("LEADRELAY_RECONCILE_UNKNOWN", "must be resend or dead"+p.got("LEADRELAY_RECONCILE_UNKNOWN"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.fail("LEADRELAY_LOG_LEVEL", "must be debug, info, warn or error"+p.got("LEADRELAY_LOG_LEVEL"))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		p.fail("LEADRELAY_LOG_FORMAT", "must be json or console"+p.got("LEADRELAY_LOG_FORMAT"))
	}
	sort.Slice(p.errs, func(i, j int) bool { return p.errs[i].Error() < p.errs[j].Error() })
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
// and a weak UI password, naming the variable and never the value.
func (c *Config) validateSecrets(p *parser) {
	if c.EmbeddedRedis() {
		return // the demo's data are throw-away and its listeners loopback
	}
	if placeholder(c.CRMAPIKey) {
		p.fail("LEADRELAY_CRM_APIKEY", "is a placeholder (change-me…); set the CRM account's real key")
	}
	if placeholder(c.UIPassword) {
		p.fail("LEADRELAY_UI_PASSWORD", "is a placeholder (change-me…); choose a password of your own")
	} else if c.UIPassword != "" && len(c.UIPassword) < MinUIPasswordLen {
		p.fail("LEADRELAY_UI_PASSWORD", fmt.Sprintf("is shorter than %d characters", MinUIPasswordLen))
	}
	for _, site := range sortedKeys(c.Sites) {
		if placeholder(c.Sites[site]) {
			p.fail("LEADRELAY_SITES", fmt.Sprintf("key of site %q is a placeholder (change-me…); generate one, e.g. openssl rand -hex 24", site))
		}
	}
	for _, site := range sortedKeys(c.SiteSecrets) {
		if placeholder(c.SiteSecrets[site]) {
			p.fail("LEADRELAY_SITE_SECRETS", fmt.Sprintf("secret of site %q is a placeholder (change-me…)", site))
		}
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

// parser reads typed values and collects every problem instead of stopping
// at the first.
type parser struct {
	getenv func(string) string
	errs   Problems
	// vars are the variables read, in order, with their defaults (Vars).
	vars []Var
	// warnings are findings that do not stop a start (Config.Warnings).
	warnings []string
}

func (p *parser) fail(name, problem string) {
	p.errs = append(p.errs, &Problem{Var: name, Text: problem})
}

// known records that name is a setting, with its default as text.
func (p *parser) known(name, def string, secret bool) {
	p.vars = append(p.vars, Var{Name: name, Default: def, Secret: secret})
}

// raw is the trimmed value of name, unrecorded.
func (p *parser) raw(name string) string { return strings.TrimSpace(p.getenv(name)) }

// got quotes the value of a non-secret setting for an error: `, got "x"`.
func (p *parser) got(name string) string {
	if v := p.raw(name); v != "" {
		return ", got " + strconv.Quote(v)
	}
	return ""
}

// gotURL quotes a URL setting with its password hidden.
func (p *parser) gotURL(name string) string {
	v := p.raw(name)
	if u, err := url.Parse(v); err == nil && u.User != nil {
		v = u.Redacted()
	} else if err != nil || strings.Contains(v, "@") {
		return ", got a value that is not a URL"
	}
	return ", got " + strconv.Quote(v)
}

func (p *parser) str(name, def string) string {
	p.known(name, def, false)
	if v := p.raw(name); v != "" {
		return v
	}
	return def
}

func (p *parser) int(name string, def int) int {
	p.known(name, strconv.Itoa(def), false)
	v := p.raw(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("must be a whole number, got %q", v))
		return def
	}
	return n
}

func (p *parser) float(name string, def float64) float64 {
	p.known(name, strconv.FormatFloat(def, 'g', -1, 64), false)
	v := p.raw(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		p.fail(name, fmt.Sprintf("must be a number, got %q", v))
		return def
	}
	return f
}

func (p *parser) bool(name string, def bool) bool {
	p.known(name, strconv.FormatBool(def), false)
	v := p.raw(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("must be true or false, got %q", v))
		return def
	}
	return b
}

func (p *parser) dur(name string, def time.Duration) time.Duration {
	p.known(name, shortDuration(def), false)
	v := p.raw(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("must be a duration such as 30s or 1h, got %q", v))
		return def
	}
	return d
}

func (p *parser) positive(name string, v float64) {
	if v <= 0 {
		p.fail(name, "must be greater than zero"+p.got(name))
	}
}

// secretStr reads a secret that has no _FILE variant.
func (p *parser) secretStr(name string) string {
	p.known(name, "", true)
	return p.raw(name)
}

// secret reads NAME, or the file named by NAME_FILE; never both. The value
// never appears in an error.
func (p *parser) secret(name string) string {
	p.known(name, "", true)
	p.known(name+"_FILE", "", false)
	v, file := p.getenv(name), p.raw(name+"_FILE")
	switch {
	case v != "" && file != "":
		p.fail(name, "and "+name+"_FILE are both set; set one")
		return ""
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			p.fail(name+"_FILE", fmt.Sprintf("cannot be read: %v", errors.Unwrap(err)))
			return ""
		}
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o004 != 0 {
			p.warnings = append(p.warnings, fmt.Sprintf("%s_FILE %s is readable by every user of the host; chmod o-r it", name, file))
		}
		return strings.TrimSpace(string(b))
	}
	return strings.TrimSpace(v)
}

// pairs parses "a=1,b=2". Values may contain '='; the error never quotes a value.
func (p *parser) pairs(name string) map[string]string {
	p.known(name, "", true)
	return p.pairsOf(name)
}

func (p *parser) pairsOf(name string) map[string]string {
	out := map[string]string{}
	v := p.raw(name)
	if v == "" {
		return out
	}
	for i, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		switch {
		case !ok || k == "" || val == "":
			p.fail(name, fmt.Sprintf("entry %d is not name=value", i+1))
		case !validSite(k):
			p.fail(name, fmt.Sprintf("site name %q may hold only letters, digits, '.', '-', '_' and '@'", k))
		case out[k] != "":
			p.fail(name, fmt.Sprintf("names site %q twice", k))
		default:
			out[k] = val
		}
	}
	return out
}

// list parses "a,b,c", dropping empty entries.
func (p *parser) list(name string) []string {
	var out []string
	for _, item := range strings.Split(p.str(name, ""), ",") {
		if item = strings.ToLower(strings.TrimSpace(item)); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (p *parser) origins(name string) map[string][]string {
	out := map[string][]string{}
	p.known(name, "", false)
	for site, list := range p.pairsOf(name) {
		for _, o := range strings.Split(list, "|") {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				p.fail(name, fmt.Sprintf("origin %q of site %q must be like https://www.example.com", o, site))
				continue
			}
			out[site] = append(out[site], u.Scheme+"://"+u.Host)
		}
	}
	return out
}

// prefixes parses "10.0.0.0/8,192.0.2.7": CIDR prefixes or single addresses.
func (p *parser) prefixes(name string) []netip.Prefix {
	p.known(name, "", false)
	var out []netip.Prefix
	v := p.raw(name)
	if v == "" {
		return nil
	}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if pfx, err := netip.ParsePrefix(item); err == nil {
			out = append(out, pfx.Masked())
		} else if a, err := netip.ParseAddr(item); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			p.fail(name, fmt.Sprintf("entry %q is not an address or CIDR prefix such as 10.0.0.0/8", item))
		}
	}
	return out
}

func validSite(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == '@') {
			return false
		}
	}
	return true
}
