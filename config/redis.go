package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RedisMode is the shape of the Redis deployment LeadRelay talks to.
type RedisMode string

// The Redis deployments LeadRelay supports. The zero value, RedisEmbedded,
// is the in-process miniredis of the demo mode.
const (
	// RedisEmbedded is an in-process, non-durable miniredis (serve only).
	RedisEmbedded RedisMode = ""
	// RedisSingle is one primary (redis:// or rediss://), with or without replicas.
	RedisSingle RedisMode = "single"
	// RedisSentinel is a primary found through Redis Sentinel
	// (redis-sentinel://), followed across failovers.
	RedisSentinel RedisMode = "sentinel"
	// RedisCluster is a Redis Cluster (redis-cluster:// or LEADRELAY_REDIS_CLUSTER).
	RedisCluster RedisMode = "cluster"
)

// Redis is where LeadRelay's Redis lives, parsed from LEADRELAY_REDIS_URL or
// LEADRELAY_REDIS_CLUSTER, and how writes wait for its replicas. Every
// Redis client (LeadRelay's keys, asynq, asynqmon) is built from it, so
// they all see the same topology. The zero value is the embedded mode.
type Redis struct {
	// URL (LEADRELAY_REDIS_URL or LEADRELAY_REDIS_URL_FILE, default empty) is redis://[user:pass@]host:port/db,
	// redis-sentinel://[user:pass@]h1:26379,h2:26379/db?master=NAME or
	// redis-cluster://[user:pass@]h1:7000,h2:7001 (rediss… for TLS), as
	// given. Empty (and no LEADRELAY_REDIS_CLUSTER) runs an in-process,
	// non-durable miniredis (serve only). Secret: it may hold a password.
	URL string
	// Mode is the kind of deployment.
	Mode RedisMode
	// Addrs are host:port of the server (single), the sentinels (sentinel)
	// or the seed nodes (cluster).
	Addrs []string
	// MasterName is the name the sentinels know the primary by (sentinel only).
	MasterName string
	// Username and Password authenticate to the Redis servers that hold the
	// data (an ACL user; empty Username means the default user). Secret.
	Username, Password string
	// SentinelPassword (LEADRELAY_REDIS_SENTINEL_PASSWORD or _FILE) authenticates to
	// the sentinels themselves, when they require it. Secret.
	SentinelPassword string
	// DB is the database number; always 0 in a cluster.
	DB int
	// TLS is set by the rediss schemes: connections use TLS, the server
	// name checked against each address's host.
	TLS bool
	// WaitReplicas (LEADRELAY_REDIS_WAIT_REPLICAS, default 0) makes
	// workers wait for that many replicas to hold a lead's "sending"
	// record before each CRM add (so a failover cannot forget an add was
	// sent), and intake wait until this many replicas hold a lead before
	// acknowledging it.
	WaitReplicas int
	// WaitTimeout (LEADRELAY_REDIS_WAIT_TIMEOUT, default
	// rdb.DefaultSyncTimeout: 1s) bounds that wait.
	WaitTimeout time.Duration
	// AllowEviction (LEADRELAY_REDIS_ALLOW_EVICTION, default false) runs
	// intake and workers against a Redis whose maxmemory-policy is not
	// noeviction. Without it they refuse to start, and intake refuses
	// leads, while Redis may evict: a full Redis would delete queued leads
	// and delivered markers.
	AllowEviction bool
	// AllowNoAOF (LEADRELAY_REDIS_ALLOW_NO_AOF, default false) runs them
	// against a Redis without an append-only file (appendonly no), e.g. a
	// managed Redis that keeps data on replicas. Without it they refuse as
	// above: a restart from a snapshot loses the leads acknowledged since
	// and delivers some twice.
	AllowNoAOF bool
}

// String is the target without credentials, for logs and banners.
func (r Redis) String() string {
	if r.Mode == RedisEmbedded {
		return "embedded"
	}
	s := string(r.Mode) + " " + strings.Join(r.Addrs, ",")
	if r.MasterName != "" {
		s += " master=" + r.MasterName
	}
	if r.DB != 0 {
		s += " db=" + strconv.Itoa(r.DB)
	}
	if r.TLS {
		s += " tls"
	}
	return s
}

// redisSchemes maps each URL scheme LeadRelay accepts to its mode, TLS and
// default port.
var redisSchemes = map[string]struct {
	mode RedisMode
	tls  bool
	port string
}{
	"redis":           {RedisSingle, false, "6379"},
	"rediss":          {RedisSingle, true, "6379"},
	"redis-sentinel":  {RedisSentinel, false, "26379"},
	"rediss-sentinel": {RedisSentinel, true, "26379"},
	"redis-cluster":   {RedisCluster, false, "6379"},
	"rediss-cluster":  {RedisCluster, true, "6379"},
}

// parseRedis reads LEADRELAY_REDIS_URL, LEADRELAY_REDIS_CLUSTER and
// LEADRELAY_REDIS_SENTINEL_PASSWORD. No error quotes the URL: it may hold
// a password.
func (p *parser) parseRedis(rawURL, cluster, sentinelPassword string) Redis {
	const urlVar, clusterVar = "LEADRELAY_REDIS_URL", "LEADRELAY_REDIS_CLUSTER"
	switch {
	case rawURL != "" && cluster != "":
		p.fail(clusterVar, "and "+urlVar+" are both set; set one (a cluster with credentials: "+urlVar+"=redis-cluster://user:pass@h1:7000,h2:7001)")
		return Redis{}
	case cluster != "":
		r := Redis{Mode: RedisCluster}
		r.Addrs = p.redisAddrs(clusterVar, cluster, "6379", true)
		return r
	case rawURL == "":
		if sentinelPassword != "" {
			p.fail("LEADRELAY_REDIS_SENTINEL_PASSWORD", "needs "+urlVar+"=redis-sentinel://…")
		}
		return Redis{}
	}
	const shape = "must look like redis://[user:pass@]host:6379/0, redis-sentinel://[user:pass@]h1:26379,h2:26379/0?master=mymaster or redis-cluster://[user:pass@]h1:7000,h2:7001"
	scheme, rest, ok := strings.Cut(rawURL, "://")
	sch, known := redisSchemes[strings.ToLower(scheme)]
	if !ok || !known {
		p.fail(urlVar, shape+p.gotURL(urlVar))
		return Redis{}
	}
	r := Redis{Mode: sch.mode, TLS: sch.tls}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if strings.Contains(tail, "@") {
		// A password with an unescaped '/' or '?': say nothing of the parts,
		// they are pieces of it.
		p.fail(urlVar, "has credentials with unescaped special characters: escape them with %XX")
		return Redis{}
	}
	hosts := authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		user, pass, _ := strings.Cut(authority[:i], ":")
		var err1, err2 error
		r.Username, err1 = url.PathUnescape(user)
		r.Password, err2 = url.PathUnescape(pass)
		if err1 != nil || err2 != nil {
			p.fail(urlVar, "has badly escaped credentials (escape special characters with %XX)")
		}
		hosts = authority[i+1:]
	}
	r.Addrs = p.redisAddrs(urlVar, hosts, sch.port, false)
	path, rawQuery, _ := strings.Cut(tail, "?")
	if db := strings.Trim(path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		switch {
		case err != nil || n < 0:
			p.fail(urlVar, "path must be a database number such as /0")
		case n != 0 && r.Mode == RedisCluster:
			p.fail(urlVar, "a cluster has only database 0")
		default:
			r.DB = n
		}
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		p.fail(urlVar, "has a malformed query")
	}
	for k := range q {
		if k != "master" || r.Mode != RedisSentinel {
			p.fail(urlVar, fmt.Sprintf("does not take the query parameter %q", k))
		}
	}
	if r.Mode == RedisSentinel {
		if r.MasterName = q.Get("master"); r.MasterName == "" {
			p.fail(urlVar, "needs ?master=NAME, the name the sentinels monitor the primary by")
		}
		r.SentinelPassword = sentinelPassword
	} else if sentinelPassword != "" {
		p.fail("LEADRELAY_REDIS_SENTINEL_PASSWORD", "needs "+urlVar+"=redis-sentinel://…")
	}
	if r.Mode == RedisSingle && len(r.Addrs) > 1 {
		p.fail(urlVar, "names several hosts; use redis-sentinel:// or redis-cluster:// for more than one")
	}
	return r
}

// redisAddrs parses "h1:p1,h2,[::1]:p3" into host:port, adding def where a
// port is missing. Errors quote a bad address only when quote is set: in a
// URL, a password with an unescaped '/' would end up in the "address".
func (p *parser) redisAddrs(name, list, def string, quote bool) []string {
	var out []string
	for i, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if err != nil { // no port
			host, port = strings.Trim(a, "[]"), def
		}
		n, perr := strconv.Atoi(port)
		if host == "" || strings.ContainsAny(host, "/@?#") || perr != nil || n < 1 || n > 65535 {
			if quote {
				p.fail(name, fmt.Sprintf("address %q is not host:port", a))
			} else {
				p.fail(name, fmt.Sprintf("address %d is not host:port (escape special characters of a password with %%XX)", i+1))
			}
			continue
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out
}
