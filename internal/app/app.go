package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"leadrelay/audit"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/deadletter"
	"leadrelay/erasure"
	"leadrelay/intake"
	"leadrelay/internal/opspage"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
	"leadrelay/metrics"
	"leadrelay/notify"
	"leadrelay/producer"
	"leadrelay/worker"
)

// Roles picks what one process runs. serve runs all of them; intake and
// worker processes scale separately against one Redis.
type Roles struct {
	// Intake accepts leads from sites over HTTP and serves the ops UI.
	Intake bool
	// Worker delivers queued leads to the CRM.
	Worker bool
	// Embedded allows the in-process Redis and CRM simulator when their URLs
	// are unset (serve only).
	Embedded bool
}

// demoSite is the site created in embedded mode when LEADRELAY_SITES is empty.
const demoSite = "demo"

// Run runs the chosen roles until ctx is done, then shuts down gracefully:
// intake stops accepting and finishes in-flight requests, the worker
// finishes or hands back in-flight deliveries. What it listens on is printed
// to stdout.
func Run(ctx context.Context, cfg config.Config, roles Roles, stdout io.Writer, log *zap.Logger) error {
	r := &relay{cfg: cfg, roles: roles, log: log}
	defer r.close()
	if err := r.openTracing(ctx); err != nil {
		return err
	}
	if err := r.openRedis(ctx); err != nil {
		return err
	}
	if err := r.chooseSites(); err != nil {
		return err
	}
	// Listen before starting anything that would need stopping.
	if err := r.listen(); err != nil {
		return err
	}
	r.route()
	if roles.Worker {
		if err := r.openWorker(ctx); err != nil {
			return err
		}
	}
	if roles.Intake {
		r.openIntake()
	}
	return r.serve(ctx, stdout)
}

// relay is one run of Run: what it opened, in the order it opened it.
type relay struct {
	cfg   config.Config
	roles Roles
	log   *zap.Logger

	rds      *Redis
	codec    lead.Codec  // seals and opens leads' fields in Redis
	ids      lead.IDKey  // names keyless leads
	dur      *durability // nil when embedded
	sites    config.Sites
	ln       net.Listener // site-facing: intake, health
	opsLn    net.Listener // ops: UI, dead letters, metrics
	health   *healthHandler
	mux      *http.ServeMux
	opsMux   *http.ServeMux
	met      *metrics.Metrics
	crm      *CRM            // with the worker role
	w        *worker.Worker  // with the worker role
	strip    *stripSweep     // with the worker role: what the workers' own strip missed
	audit    *audit.Auditor  // with the worker role, unless LEADRELAY_AUDIT_INTERVAL is 0
	notifier notify.Notifier // with the worker role: dead leads, the circuit, audits
	reloader *sitesReloader  // with the intake role
	opsUI    string          // the operators' front page, with the intake role
	closers  []func()        // run last first by close
	tracer   trace.Tracer    // nil: tracing off
}

// onClose has close run f, before what was opened earlier.
func (r *relay) onClose(f func()) { r.closers = append(r.closers, f) }

// close closes what the run opened, last opened first.
func (r *relay) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// openRedis connects to Redis (or starts the embedded one) and, on a real
// one, starts checking its durability.
func (r *relay) openRedis(ctx context.Context) error {
	rds, err := OpenRedis(ctx, r.cfg, r.roles.Embedded, r.log)
	if err != nil {
		return err
	}
	r.rds = rds
	r.onClose(func() { _ = rds.Close() })
	if err := opsOpenAllowed(r.cfg, rds.Embedded); err != nil {
		return err
	}
	if r.codec, err = DataCodec(r.cfg, rds.Embedded, r.log); err != nil {
		return err
	}
	if r.roles.Intake || r.roles.Worker {
		if r.ids, err = IDKey(r.cfg, r.codec, rds.Embedded, r.log); err != nil {
			return err
		}
	}
	if !rds.Embedded {
		r.dur = newDurability(rds, r.cfg, r.log)
		if err := r.dur.start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// chooseSites takes the configured sites, or a demo site when embedded, and
// logs the configuration's warnings.
func (r *relay) chooseSites() error {
	r.sites = r.cfg.Intake.Sites
	if r.roles.Intake && len(r.sites) == 0 {
		if !r.rds.Embedded {
			return errors.New("LEADRELAY_SITES_FILE or LEADRELAY_SITES is required: name the sites allowed to send leads and their keys (README.md, \"The sites file\")")
		}
		r.sites = config.Sites{demoSite: {Name: demoSite, Keys: []string{randomKey()}, RateLimit: r.cfg.Intake.SiteRateLimit}}
	}
	for _, w := range r.cfg.Warnings {
		r.log.Warn(w)
	}
	return nil
}

// workerOpsAddr is where a worker process's ops listener (health and
// metrics) listens when LEADRELAY_OPS_ADDR does not say: any free
// loopback port, which the banner and the "listening" log line print, so
// that any number of workers start on one host with the same settings.
const workerOpsAddr = "127.0.0.1:0"

// listen opens the listeners. A worker process serves no site: it opens
// the site listener only when LEADRELAY_HTTP_ADDR is set, and its ops
// listener on a free loopback port unless LEADRELAY_OPS_ADDR is set.
func (r *relay) listen() error {
	var err error
	workerOnly := r.roles.Worker && !r.roles.Intake
	if !workerOnly || r.cfg.HTTPAddrSet() {
		if r.ln, err = r.listenOn("LEADRELAY_HTTP_ADDR", "the site listener", r.cfg.Server.HTTPAddr, r.cfg.HTTPAddrSet()); err != nil {
			return err
		}
		r.onClose(func() { _ = r.ln.Close() })
	}
	opsAddr := r.cfg.Ops.Addr
	if workerOnly && !r.cfg.OpsAddrSet() {
		opsAddr = workerOpsAddr
	}
	if r.opsLn, err = r.listenOn("LEADRELAY_OPS_ADDR", "the ops listener", opsAddr, r.cfg.OpsAddrSet()); err != nil {
		return err
	}
	r.onClose(func() { _ = r.opsLn.Close() })
	return nil
}

// siteAddr is the site listener's address, "" when the process has none
// (a worker without LEADRELAY_HTTP_ADDR).
func (r *relay) siteAddr() string {
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// listenOn listens on addr, which the variable name sets (set: it did).
// In the embedded demo a default address that another process holds gives
// way to a free loopback port, which the banner prints; anywhere else a
// taken address is an error naming the variable to set.
func (r *relay) listenOn(name, what, addr string, set bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case !errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s %s: %w", name, addr, err)
	case r.rds.Embedded && !set:
		if ln, ferr := net.Listen("tcp", "127.0.0.1:0"); ferr == nil {
			r.log.Warn(what+"'s default address is taken; the demo listens on a free port instead (set "+name+" to choose)",
				zap.String("default", addr), zap.String("addr", ln.Addr().String()))
			return ln, nil
		}
	}
	return nil, fmt.Errorf("%s's address %s is taken by another process: set %s to a free address (127.0.0.1:0 takes any free port): %w", what, addr, name, err)
}

// route mounts health on both listeners and metrics on the ops one.
func (r *relay) route() {
	rds := r.rds
	r.health = &healthHandler{checks: map[string]Check{
		"redis": func(ctx context.Context) error {
			if err := rds.Client.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis unreachable: %w", err)
			}
			return nil
		},
	}}
	if r.dur != nil {
		r.health.checks["redis_durability"] = r.dur.ready
	}
	// Two listeners: the site-facing one (intake, health) and the ops one
	// (UI, dead letters, metrics), which sites and the internet never reach.
	r.mux = http.NewServeMux()
	r.mux.HandleFunc("GET /healthz", r.health.live)
	r.mux.HandleFunc("GET /readyz", r.health.readyPublic)
	r.opsMux = http.NewServeMux()
	r.opsMux.HandleFunc("GET /healthz", r.health.live)
	r.opsMux.HandleFunc("GET /readyz", r.health.ready)
	var metricsHandler http.Handler
	r.met, metricsHandler = newMetrics(rds.Client)
	// Metrics name the sites and their volumes: operators only.
	r.opsMux.Handle("GET /metrics", metricsHandler)
}

// openWorker opens the CRM and the notifier and builds the worker; its
// readiness joins the health checks.
func (r *relay) openWorker(ctx context.Context) error {
	var err error
	if r.crm, err = OpenCRM(ctx, r.cfg, r.roles.Embedded, r.log); err != nil {
		return err
	}
	r.onClose(r.crm.Close)
	notifier, err := openNotifier(ctx, r.cfg, r.log)
	if err != nil {
		return err
	}
	r.notifier = notifier
	var h *worker.Handler
	if h, r.w, err = newWorker(r.rds, r.crm, r.cfg, r.codec, r.ids, r.met, notifier, r.tracer, r.log); err != nil {
		return err
	}
	r.health.checks["crm"] = h.Ready
	r.health.notes = map[string]Note{"crm_circuit": circuitNote(h.CircuitState), "crm_audit": auditNote(r.rds.Client)}
	r.audit = newAuditor(h, r.rds, r.cfg, r.codec, r.ids, r.met, notifier, r.log)
	r.strip = &stripSweep{h: h, retention: r.cfg.Queue.DedupTTL, met: r.met, log: r.log}
	return nil
}

// openIntake mounts intake on the site-facing listener and the UI and dead
// letters on the ops one.
func (r *relay) openIntake() {
	o := producerOptions(r.cfg, r.codec, r.ids)
	o.SiteShare = siteShare(r.rds, r.cfg)
	o.Tracer = r.tracer
	pub := producer.New(r.rds.Client, o, r.log)
	r.onClose(func() { _ = pub.Close() })
	dir := intake.NewDirectory(intakeSites(r.sites), r.log)
	r.met.KnownSites(r.sites.Names()...)
	mountOps(r.opsMux, r.rds, r.cfg, r.codec, r.sites.Names(), r.log)
	r.opsUI = "http://" + r.opsLn.Addr().String() + opsHome(r.opsMux)
	mountIntake(r.mux, r.rds, r.dur, r.cfg, dir, pub, r.met, r.opsUI, r.tracer, r.log)
	r.reloader = &sitesReloader{cfg: r.cfg, dir: dir, met: r.met, log: r.log, running: r.sites}
}

// serve runs everything opened until ctx is done or one part fails, then
// shuts the servers down within the shutdown timeout.
func (r *relay) serve(ctx context.Context, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	r.runBackground(ctx, &wg, errc)
	srv := intake.NewHTTPServer(r.cfg.Server.HTTPAddr, r.mux)
	opsSrv := intake.NewHTTPServer(r.cfg.Ops.Addr, OpsGuard(r.opsMux, opsGuardOptions(r.cfg, r.rds.Embedded, r.log), r.log))
	if r.ln != nil {
		r.serveHTTP(&wg, errc, "http", srv, r.ln)
	}
	r.serveHTTP(&wg, errc, "ops http", opsSrv, r.opsLn)
	r.printBanner(stdout)
	r.log.Info("listening", zap.String("addr", r.siteAddr()), zap.String("ops_addr", r.opsLn.Addr().String()),
		zap.Bool("intake", r.roles.Intake), zap.Bool("worker", r.roles.Worker))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	r.log.Info("shutting down")
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), r.cfg.Server.ShutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		r.log.Warn("http shutdown", zap.Error(err))
	}
	if err := opsSrv.Shutdown(sctx); err != nil {
		r.log.Warn("ops http shutdown", zap.Error(err))
	}
	wg.Wait()
	return runErr
}

// runBackground starts the durability watch, the worker, the dead letters'
// retention, the strip sweep and the sites' reloader, each where it runs.
func (r *relay) runBackground(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) {
	if r.dur != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.dur.watch(ctx)
		}()
	}
	if r.w != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.w.Run(ctx); err != nil {
				errc <- fmt.Errorf("worker: %w", err)
			}
		}()
		if r.audit != nil {
			wg.Go(func() { r.audit.Loop(ctx) })
		}
		sweep := deadSweep{store: deadStore(r.rds, r.cfg, r.codec), attempts: rdb.New(r.rds.Client),
			insp: asynq.NewInspectorFromRedisClient(r.rds.Client), queue: r.cfg.Queue.Name,
			retention: r.cfg.Worker.DeadRetention, met: r.met, notify: r.notifier, log: r.log}
		wg.Go(func() { every(ctx, sweepEvery, sweep.once) })
		if r.strip != nil {
			wg.Go(func() { every(ctx, stripSweepEvery, func(ctx context.Context) { r.strip.once(ctx) }) })
		}
	}
	if r.reloader != nil {
		r.reloader.start(ctx, wg)
	}
}

// serveHTTP serves srv on ln, behind the connection caps, until it is shut
// down; any other end is sent on errc.
func (r *relay) serveHTTP(wg *sync.WaitGroup, errc chan<- error, name string, srv *http.Server, ln net.Listener) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		ln := intake.GuardListener(srv, ln, intake.ConnLimits{Max: r.cfg.Server.MaxConnections,
			PerClient: r.cfg.Server.MaxConnectionsPerClient, TrustedProxies: r.cfg.Server.TrustedProxies})
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

// limitReport shows the fleet's adaptive CRM concurrency limit: every move
// in the metrics, and a log line whenever it moved or a verdict other than
// a plain measurement came (not once an epoch while it holds).
func limitReport(met *metrics.Metrics, log *zap.Logger) func(worker.AdaptiveChange) {
	var last atomic.Int64
	return func(c worker.AdaptiveChange) {
		met.CRMConcurrencyLimit(c.Limit, c.Verdict.String(), c.Goodput)
		from := last.Swap(int64(c.Limit))
		if from == int64(c.Limit) && c.Verdict == worker.AdaptiveMeasured {
			return
		}
		log.Info("CRM concurrency limit", zap.Int("limit", c.Limit), zap.Int64("from", from),
			zap.Stringer("verdict", c.Verdict), zap.Float64("goodput", c.Goodput))
	}
}

// newWorker builds the delivery handler and the asynq server around it, with
// the fleet-wide CRM limiter and the dead-letter store.
func newWorker(rds *Redis, crm *CRM, cfg config.Config, codec lead.Codec, ids lead.IDKey, met *metrics.Metrics, n notify.Notifier, tr trace.Tracer, log *zap.Logger) (*worker.Handler, *worker.Worker, error) {
	o := WorkerOptions(cfg)
	o.Codec, o.IDKey = codec, ids
	o.Tracer = tr
	o.Limiter = CRMLimiter(rds.Client, cfg, worker.WithLimitReport(limitReport(met, log)))
	dead := deadStore(rds, cfg, codec)
	mctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if moved, err := dead.Migrate(mctx); err != nil {
		log.Warn("dead letters of the previous version not moved; they stay out of view until the next start", zap.Error(err))
	} else if moved > 0 {
		log.Info("dead letters of the previous version moved to the cluster-safe keys", zap.Int("keys", moved))
	}
	cancel()
	o.DeadLetters = deadLetters{store: dead, codec: codec, queue: cfg.Queue.Name, notify: n}
	o.Observer = &notifyingObserver{Observer: met, n: n}
	o.OnOutage = outageNotifier(met, n)
	o.OnRollback = rollbackReport(met, n)
	h, err := worker.NewHandler(crm.Client, rds.Client, o, log)
	if err != nil {
		return nil, nil, err
	}
	return h, worker.New(rds.Client, h, o, log), nil
}

// mountIntake serves the site-facing routes at /.
func mountIntake(mux *http.ServeMux, rds *Redis, dur *durability, cfg config.Config, dir *intake.Directory, pub *producer.Publisher, met *metrics.Metrics, opsUI string, tr trace.Tracer, log *zap.Logger) {
	mux.Handle("/", intake.New(intake.Options{
		Directory: dir,
		OpsUI:     opsUI,
		Tracer:    tr,
		Limiter: intake.NewRedisLimiter(rds.Client, cfg.Intake.SiteRateLimit, cfg.Intake.GlobalRateLimit,
			intake.WithSiteRates(dir.SiteRate)),
		LeadBudget:     intake.NewRedisLeadBudget(rds.Client, cfg.Intake.SiteLeadRateLimit),
		TrustedProxies: cfg.Server.TrustedProxies,
		Replays:        intake.NewRedisReplays(rds.Client),
		Observer:       met,
		Capacity:       capacity(rds, dur, cfg, log),
	}, pub, log))
}

// capacity is intake's bound on the backlog, its Redis memory guard, and
// its refusal while Redis may lose leads (dur). The embedded miniredis has
// no memory figures: the demo runs without the guard.
func capacity(rds *Redis, dur *durability, cfg config.Config, log *zap.Logger) intake.Capacity {
	c := intake.Capacity{SiteMax: cfg.Intake.SiteMaxQueued, TotalMax: cfg.Intake.MaxQueued}
	if dur != nil {
		c.Unsafe = dur.Problem
	}
	// The backlog is the store's count per site and asynq's queue sizes;
	// the publisher holds each lead to the caps, this reads them ahead of
	// a batch.
	store := rdb.New(rds.Client)
	c.Backlog = intake.BacklogFunc(func(ctx context.Context, site string) (int64, int64, error) {
		return store.Backlog(ctx, cfg.Queue.Name, site)
	})
	if rds.Embedded || cfg.Intake.MemoryGuard == 0 {
		return c
	}
	probe := intake.NewRedisMemory(rds.Client)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	switch _, limit, err := probe.Memory(ctx); {
	case err != nil:
		log.Warn("Redis memory unknown at start; the memory guard reads it again with each lead", zap.Error(err))
	case limit == 0:
		log.Warn("Redis has no maxmemory: LEADRELAY_REDIS_MEMORY_GUARD cannot work, and a backlog can fill the host; set maxmemory (see deploy/redis.conf)")
	}
	c.Memory, c.MemoryShare = probe, cfg.Intake.MemoryGuard
	return c
}

// mountOps serves LeadRelay's page at /, asynqmon at /ui/, the
// dead-letter routes and erasure on the ops listener.
func mountOps(mux *http.ServeMux, rds *Redis, cfg config.Config, codec lead.Codec, sites []string, log *zap.Logger) {
	store := deadStore(rds, cfg, codec)
	page := opspage.New(rds.Client, store, codec, opspage.Options{Queue: cfg.Queue.Name, Sites: sites,
		ReadOnly: cfg.Ops.ReadOnly, Log: log})
	mux.Handle("GET /{$}", page)
	mux.Handle("/leads/", page)
	mux.Handle(uiPath+"/", UIHandler(rds.ConnOpt, cfg.Ops.ReadOnly, codec))
	eraser := erasure.New(rds.Client, erasure.Options{Queue: cfg.Queue.Name, Codec: codec, Log: log})
	mux.Handle(erasePath, eraseHandler(eraser, cfg.Ops.ReadOnly))
	dead := deadHandler(store, cfg.Ops.ReadOnly)
	mux.Handle(deadPath, dead)
	mux.Handle(deadPath+"/", dead)
}

// opsGuardOptions is the ops listener's guard as configured. Outside the
// embedded demo it needs credentials unless the operator opted out, which
// is warned about; without either it answers 401 to everything. The demo
// is open only where opsOpenAllowed lets it start.
func opsGuardOptions(cfg config.Config, embedded bool, log *zap.Logger) OpsGuardOptions {
	o := OpsGuardOptions{User: cfg.Ops.User, Password: cfg.Ops.Password, Hosts: cfg.Ops.Hosts, TrustedProxies: cfg.Server.TrustedProxies}
	switch {
	case cfg.Ops.User != "":
	case cfg.Ops.NoAuth:
		o.Open = true
		log.Warn("LEADRELAY_OPS_NO_AUTH: the ops listener (UI, dead leads with their personal data, metrics) answers anyone who reaches it without credentials",
			zap.String("ops_addr", cfg.Ops.Addr))
	case embedded:
		o.Open = true // the demo: throw-away data, on loopback
	default:
		log.Warn("the ops listener has no credentials and answers 401: set LEADRELAY_UI_USER and LEADRELAY_UI_PASSWORD (or LEADRELAY_OPS_NO_AUTH=true)")
	}
	return o
}

// opsOpenAllowed refuses to start the embedded demo with an ops listener
// that would answer without credentials anywhere but the demo proper: on
// a loopback address with the embedded CRM simulator. With a real CRM the
// dead leads are real people's, and off loopback anyone who reaches the
// port reads them.
func opsOpenAllowed(cfg config.Config, embedded bool) error {
	if !embedded || cfg.Ops.User != "" || cfg.Ops.NoAuth {
		return nil
	}
	var why []string
	if !loopbackAddr(cfg.Ops.Addr) {
		why = append(why, fmt.Sprintf("LEADRELAY_OPS_ADDR %s is not a loopback address", cfg.Ops.Addr))
	}
	if !cfg.EmbeddedCRM() {
		why = append(why, "LEADRELAY_CRM_URL names a real CRM")
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("the ops listener (UI, dead leads, metrics) would answer without credentials, and the demo allows that only on loopback with the embedded CRM simulator (%s): set LEADRELAY_UI_USER and LEADRELAY_UI_PASSWORD, or LEADRELAY_OPS_NO_AUTH=true to open it on purpose",
		strings.Join(why, "; "))
}

// loopbackAddr reports whether addr's host is a loopback IP or localhost.
// An empty host listens on every interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// deadStore is the dead-letter store with the task options and the codec
// a requeue needs.
func deadStore(rds *Redis, cfg config.Config, codec lead.Codec) *deadletter.Store {
	return deadletter.New(rds.Client, deadletter.Options{MaxRetry: cfg.Queue.MaxRetry, Retention: cfg.Queue.DedupTTL, Codec: codec})
}
