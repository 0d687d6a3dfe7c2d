package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/internal/app"
	"leadrelay/internal/redisproc"
	"leadrelay/lead"
)

// Options configure one bench run. The zero value is a full run that starts
// redis-server from PATH and writes no files.
type Options struct {
	// Quick runs every section with a few leads: seconds, not minutes. Its
	// figures prove the bench works; they are too noisy to quote.
	Quick bool
	// RedisServer is the redis-server executable; "" looks it up on PATH.
	RedisServer string
	// RedisAddr, when set, is a running redis-server to use instead of
	// starting one. The bench FLUSHALLs it between sections.
	RedisAddr string
	// AOF runs the bench's redis-server with appendonly everysec.
	AOF bool
	// Only, when not empty, names the sections to run (intake, delivery,
	// workers, latency, light, pool, real, drain, real-drain).
	Only []string
	// Markdown, when set, is the BENCHMARKS.md file the run's table is
	// appended to.
	Markdown string
	// Plot, when set, is the PNG file the throughput plot is written to.
	Plot string
	// Label names the run in BENCHMARKS.md (e.g. a commit).
	Label string
	// Progress receives a line per measurement; nil discards them.
	Progress io.Writer
	// RealCRM, when its URL is set, adds the real section: the CRM's best
	// direct rate against LeadRelay's with default settings.
	RealCRM RealCRM
}

// Sections of a run, in order.
const (
	SectionIntake   = "intake"
	SectionDelivery = "delivery"
	SectionWorkers  = "workers"
	SectionLatency  = "latency"
	SectionLight    = "light"
	SectionPool     = "pool"
	SectionReal     = "real"
	SectionDrain    = "drain"
	// SectionRealDrain is the drain against the real CRM.
	SectionRealDrain = "real-drain"
)

// sections are a run's sections, in order: each one's name, what runs it,
// and whether it needs the real CRM (it is skipped when none is set).
var sections = []struct {
	name     string
	run      func(*bench, context.Context) error
	needsCRM bool
}{
	{SectionIntake, (*bench).intake, false},
	{SectionDelivery, (*bench).delivery, false},
	{SectionWorkers, (*bench).workers, false},
	{SectionLatency, (*bench).latency, false},
	{SectionLight, (*bench).light, false},
	{SectionPool, (*bench).pool, false},
	{SectionReal, (*bench).real, true},
	{SectionDrain, (*bench).drain, false},
	{SectionRealDrain, (*bench).realDrain, true},
}

// allSections are the sections' names, in order.
var allSections = func() []string {
	names := make([]string, len(sections))
	for i, s := range sections {
		names[i] = s.name
	}
	return names
}()

// benchSite and benchSiteKey are the one site the bench sends leads as.
const (
	benchSite    = "bench"
	benchSiteKey = "bench-site-key-0123456789"
	// benchDataKeys seals the leads of the relay under test (LEADRELAY_DATA_KEYS).
	benchDataKeys = "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// sizes scale a run.
type sizes struct {
	intakeFor     time.Duration // per intake point
	deliveryLeads int           // per delivery point
	latencyLeads  int           // per concurrency at 50 ms CRM latency, times C/10
	lightLeads    int           // light-load leads at the default poll interval
	sweepLeads    int           // light-load leads per poll interval of the sweep
	idleFor       time.Duration // idle Redis load window of the sweep and the references
	idleDefault   time.Duration // idle Redis load window of LeadRelay at its defaults
	idleLeads     int           // leads sent one by one into an idle fleet
	poolLeads     int           // per point of the PHP-pool sweep
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{intakeFor: 150 * time.Millisecond, deliveryLeads: 120, latencyLeads: 20,
			lightLeads: 10, sweepLeads: 6, idleFor: 300 * time.Millisecond, idleDefault: 300 * time.Millisecond,
			idleLeads: 2, poolLeads: 40}
	}
	return sizes{intakeFor: 2 * time.Second, deliveryLeads: 4000, latencyLeads: 600,
		lightLeads: 200, sweepLeads: 100, idleFor: 3 * time.Second, idleDefault: time.Minute,
		idleLeads: 30, poolLeads: 600}
}

// bench is one run in progress.
type bench struct {
	o        Options
	sz       sizes
	rdb      *redis.Client // the bench's own connection: flushes, INFO
	addr     string        // Redis host:port
	redisURL string
	progress io.Writer
	rep      *Report
}

// Run measures the selected sections and returns the report; it writes the
// Markdown and the plot when Options name them.
func Run(ctx context.Context, o Options) (*Report, error) {
	b := &bench{o: o, sz: sizesFor(o.Quick), progress: o.Progress, rep: &Report{Started: time.Now(), Quick: o.Quick, Label: o.Label}}
	if b.progress == nil {
		b.progress = io.Discard
	}
	addr := o.RedisAddr
	if addr == "" {
		bin := o.RedisServer
		if bin == "" {
			bin = "redis-server"
		}
		srv, err := startRedis(ctx, bin, o.AOF)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		addr = srv.addr
	}
	b.addr, b.redisURL = addr, "redis://"+addr+"/0"
	b.rdb = redis.NewClient(&redis.Options{Addr: addr})
	defer b.rdb.Close()
	if v, err := b.rdb.Info(ctx, "server").Result(); err == nil {
		b.rep.RedisVersion = field(v, "redis_version")
	}
	b.rep.AOF = o.AOF
	for _, s := range sections {
		if !b.selected(s.name) || s.needsCRM && b.o.RealCRM.URL == "" {
			continue
		}
		if err := s.run(b, ctx); err != nil {
			b.rep.Finished = time.Now()
			return b.rep, fmt.Errorf("bench %s: %w", s.name, err)
		}
		b.rep.rss(s.name)
	}
	b.rep.Finished = time.Now()
	if o.Markdown != "" {
		if err := b.rep.AppendMarkdown(o.Markdown); err != nil {
			return b.rep, err
		}
	}
	if o.Plot != "" {
		if err := b.rep.WritePlot(o.Plot); err != nil {
			return b.rep, err
		}
	}
	return b.rep, nil
}

func (b *bench) selected(s string) bool {
	if len(b.o.Only) == 0 {
		return true
	}
	for _, x := range b.o.Only {
		if x == s {
			return true
		}
	}
	return false
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, format+"\n", args...)
}

// flush empties Redis between measurements.
func (b *bench) flush(ctx context.Context) error {
	return b.rdb.FlushAll(ctx).Err()
}

// env is LeadRelay's configuration for the bench: its Redis and CRM, one
// site, no intake or CRM limits (throughput sections), JSON logs at info.
func (b *bench) env(c *crm, extra map[string]string) map[string]string {
	e := map[string]string{
		"LEADRELAY_REDIS_URL":          b.redisURL,
		"LEADRELAY_DATA_KEYS":          benchDataKeys,
		"LEADRELAY_SITES":              benchSite + "=" + benchSiteKey,
		"LEADRELAY_SITE_RATE_LIMIT":    "0",
		"LEADRELAY_GLOBAL_RATE_LIMIT":  "0",
		"LEADRELAY_CRM_RATE_LIMIT":     "0",
		"LEADRELAY_CRM_MAX_CONCURRENT": "0",
		"LEADRELAY_CRM_API":            "v2",
		"LEADRELAY_LOG_LEVEL":          "info",
		"LEADRELAY_LOG_FORMAT":         "json",
		"LEADRELAY_SHUTDOWN_TIMEOUT":   "5s",
		"LEADRELAY_OPS_ADDR":           "127.0.0.1:0",
	}
	if !b.rep.AOF {
		// The bench measures Redis without its append-only file unless
		// -aof asks for it; a relay refuses such a Redis unless told.
		e["LEADRELAY_REDIS_ALLOW_NO_AOF"] = "true"
	}
	if c != nil {
		e["LEADRELAY_CRM_URL"] = c.url
		e["LEADRELAY_CRM_LOGIN"] = crmLogin
		e["LEADRELAY_CRM_APIKEY"] = crmAPIKey
	}
	for k, v := range extra {
		if v == "" {
			delete(e, k)
		} else {
			e[k] = v
		}
	}
	return e
}

// relay is one LeadRelay app.Run in the bench process, wired as production
// wires it; its logs are encoded and discarded.
type relay struct {
	url    string
	cancel context.CancelFunc
	done   chan error
}

// startRelay runs app.Run with the roles and waits until /healthz answers.
// The site listener's address is set as LEADRELAY_HTTP_ADDR, as an
// operator sets it: a worker opens that listener (its /healthz) only when
// the setting names it.
func startRelay(ctx context.Context, env map[string]string, roles app.Roles) (*relay, error) {
	port, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg, err := config.Load(func(k string) string {
		if k == "LEADRELAY_HTTP_ADDR" {
			return addr
		}
		return env[k]
	})
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	cfg.Ops.Addr = "127.0.0.1:0" // several relays run at once: no fixed ops port
	log := app.NewLogger(cfg, io.Discard)
	rctx, cancel := context.WithCancel(ctx)
	r := &relay{url: "http://" + cfg.Server.HTTPAddr, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- app.Run(rctx, cfg, roles, io.Discard, log) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(r.url + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case err := <-r.done:
			cancel()
			return nil, fmt.Errorf("leadrelay stopped at start: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, errors.New("leadrelay not healthy after 10s")
		}
	}
}

// stop shuts the relay down gracefully and waits (bounded) for it.
func (r *relay) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
	}
}

// benchLead is lead number i of run: realistic sizes, unique content.
func benchLead(run string, i int) lead.Lead {
	n := strconv.Itoa(i)
	return lead.Lead{
		Title:       "Ann Lee " + n,
		Email:       "bench-" + run + "-" + n + "@example.com",
		Phone:       "+7900" + fmt.Sprintf("%07d", i%10000000),
		Company:     "Lee & Daughters Ltd",
		Description: "Hello, please call me back about the three-room flat on Green Street, order " + n + ". Evenings are best.",
		UTMSource:   "google",
		UTMMedium:   "cpc",
		UTMCampaign: "spring-sale",
	}
}

// taskOptions are the asynq options the producer gives a lead task, for the
// raw references.
func taskOptions() []asynq.Option {
	return []asynq.Option{asynq.Queue(lead.DefaultQueue), asynq.MaxRetry(80), asynq.Retention(24 * time.Hour)}
}

// nopLog is the asynq logger of the raw references.
func nopLog() asynq.Logger { return zap.NewNop().Sugar() }
