package crmsim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultAddr is where `go run ./tools/crmsim` listens unless --addr says otherwise.
const DefaultAddr = "127.0.0.1:9090"

// demoKey is the API key used when --apikey is not given.
const demoKey = "demo-key"

// Run is the stand-alone simulator, `go run ./tools/crmsim`: it serves a
// Sim on --addr until ctx is done. args are the command's arguments. It
// prints "crmsim listening on http://ADDR (api=…, login=…)" to stdout
// (never the key) and logs to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("crmsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr       = fs.String("addr", DefaultAddr, "listen address (keep it on loopback: the /_sim/ admin endpoints need no key)")
		api        = fs.String("api", APIBoth, "API versions to serve: v1, v2 or both")
		login      = fs.String("login", "", "login of the coordinator user (default admin@example.com); sales1@example.com and sales2@example.com also exist")
		apikey     = fs.String("apikey", "", "account API key (default \""+demoKey+"\", with a warning); visible to every user in the process list, prefer --apikey-file")
		apikeyFile = fs.String("apikey-file", "", "file holding the account API key (a Docker secret such as /run/secrets/crm_apikey)")
		data       = fs.String("data", "", "JSON file that keeps the leads across restarts")
		seed       = fs.Int64("seed", 1, "seed of the random source that draws faults")
		errRate    = fs.Float64("error-rate", 0, "fraction of API requests answered with --error-status")
		errStatus  = fs.Int("error-status", 500, "HTTP status for --error-rate: 500 or 503")
		latency    = fs.Duration("latency", 0, "latency added to every API answer")
		ambRate    = fs.Float64("ambiguous-rate", 0, "fraction of adds stored and then dropped without an answer")
		fatalRate  = fs.Float64("fatal-rate", 0, "fraction of API requests answered with a PHP fatal error page")
		v1Shipped  = fs.Bool("v1-shipped", false, "v1 behaves as shipped: add and info fail with a PHP fatal, list ignores parameters")
		authFail   = fs.Bool("auth-fail", false, "answer every API request as a wrong key")
		reject     = fs.String("reject-marker", "", "fail adds whose title, description or email contains this text (error code 1)")
		rl429      = fs.Float64("rate-limit-rate", 0, "fraction of API requests answered 429 with Retry-After: 1")
		outageFor  = fs.Duration("outage", 0, "start with an outage of this length")
		outageMode = fs.String("outage-mode", OutageHTTP503, "outage mode: 503 or refuse")
		fatalStyle = fs.String("fatal-style", FatalHTML, "how PHP fatals answer: html (HTTP 200, error page), empty500 (HTTP 500, empty body: display_errors off), crm (the running CRM: v1 empty500, v2 html); with --v1-shipped --fatal-style crm, v1 add and info answer 500 empty on every call")
		v1ListIgn  = fs.Bool("v1-list-ignores-params", false, "v1 list ignores every parameter (the newest 200), as shipped, while v1 add works")
		stampGap   = fs.Duration("stamp-gap", 0, "v2 add stores the lead at once and its uids only after this gap (the CRM's webhook self-call, up to 5s)")
		stampKill  = fs.Float64("stamp-kill-rate", 0, "fraction of v2 adds killed in that gap: the lead stays stored without its uids, the connection is dropped")
		lateRate   = fs.Float64("late-commit-rate", 0, "fraction of adds that work --late-commit-delay before storing the lead, whether the client still waits or not")
		lateDelay  = fs.Duration("late-commit-delay", defaultLateCommitDelay, "work time of a --late-commit-rate add; set it above the client's timeout")
		phpWorkers = fs.Int("php-workers", 0, "serve with this many PHP workers like the real CRM (requests beyond wait; a v2 add's webhook self-call waits up to --webhook-stall while all are busy, so overload collapses); 0 = unlimited. PHP's built-in server with PHP_CLI_SERVER_WORKERS=N behaves like N+2")
		whStall    = fs.Duration("webhook-stall", defaultWebhookStall, "with --php-workers: longest wait of a v2 add's webhook self-call for a free worker")
		cpus       = fs.Int("cpus", 0, "--latency is CPU time shared by the requests at work on this many CPUs, so it grows with concurrency (the real CRM: 2); 0 = a fixed sleep")
		whTime     = fs.Duration("webhook-time", defaultWebhookTime, "with --php-workers: time a webhook self-call holds a worker")
		logLevel   = fs.String("log-level", "debug", "log level: debug (the default) logs every request, key redacted; info logs only warnings and the start")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("crmsim: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("crmsim: unexpected argument %q", fs.Arg(0))
	}
	if *api != APIv1 && *api != APIv2 && *api != APIBoth {
		return fmt.Errorf("crmsim: --api must be v1, v2 or both, got %q", *api)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"error-rate", *errRate}, {"ambiguous-rate", *ambRate}, {"fatal-rate", *fatalRate}, {"rate-limit-rate", *rl429}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("crmsim: --%s must be between 0 and 1, got %v", r.name, r.v)
		}
	}
	if *errStatus != 500 && *errStatus != 503 {
		return fmt.Errorf("crmsim: --error-status must be 500 or 503, got %d", *errStatus)
	}
	if *latency < 0 {
		return fmt.Errorf("crmsim: --latency must not be negative, got %s", *latency)
	}
	if *outageFor < 0 {
		return fmt.Errorf("crmsim: --outage must not be negative, got %s", *outageFor)
	}
	if *outageMode != OutageHTTP503 && *outageMode != OutageRefuse {
		return fmt.Errorf("crmsim: --outage-mode must be 503 or refuse, got %q", *outageMode)
	}
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("crmsim: --log-level: %w", err)
	}
	var err error
	if strings.TrimSpace(*addr) == "" {
		return errors.New("crmsim: --addr must not be empty")
	}

	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(stderr)), level))
	defer func() { _ = log.Sync() }()

	key := *apikey
	if *apikeyFile != "" {
		if key != "" {
			return errors.New("crmsim: --apikey and --apikey-file are both set; set one")
		}
		if key, err = readKeyFile(*apikeyFile, log); err != nil {
			return err
		}
	}
	if key == "" {
		key = demoKey
		log.Warn("crmsim: --apikey not set, using the demo key \"" + demoKey + "\"")
	}
	users := DefaultUsers()
	if *login != "" {
		users = replaceCoordinator(users, *login)
	}
	faults := Faults{
		ErrorRate: *errRate, ErrorStatus: *errStatus, Latency: Duration(*latency),
		AmbiguousRate: *ambRate, FatalRate: *fatalRate, V1Shipped: *v1Shipped,
		AuthFail: *authFail, RejectMarker: *reject, RateLimit429: *rl429,
		FatalStyle: *fatalStyle, V1ListIgnoresParams: *v1ListIgn,
		StampGap: Duration(*stampGap), StampKillRate: *stampKill,
		LateCommitRate: *lateRate, LateCommitDelay: Duration(*lateDelay),
		PHPWorkers: *phpWorkers, CPUs: *cpus, WebhookStall: Duration(*whStall), WebhookTime: Duration(*whTime),
	}
	if *outageFor > 0 {
		faults.Outage = &Outage{Mode: *outageMode, For: Duration(*outageFor)}
	}
	if err := faults.Validate(); err != nil { // the flags added with these faults are checked here
		return fmt.Errorf("crmsim: flags: %w", err)
	}
	sim, err := New(Config{API: *api, APIKey: key, Users: users, DataFile: *data, Seed: *seed, Faults: faults, Logger: log})
	if err != nil {
		return err
	}
	defer sim.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := NewServer(sim)
	if err := srv.Start(runCtx, *addr); err != nil {
		return fmt.Errorf("crmsim: --addr %s: %w", *addr, err)
	}
	coord := users[0].Login
	fmt.Fprintf(stdout, "crmsim listening on http://%s (api=%s, login=%s)\n", srv.Addr(), *api, coord)
	<-ctx.Done()
	err = srv.Close()
	srv.Wait()
	if ferr := sim.Close(); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// replaceCoordinator makes login the coordinator's login (unless it is
// already one of the users, which then becomes the coordinator).
func replaceCoordinator(users []User, login string) []User {
	for i := range users {
		if strings.EqualFold(users[i].Login, login) {
			for j := range users {
				users[j].Coordinator = j == i
			}
			users[0], users[i] = users[i], users[0]
			return users
		}
	}
	users[0].Login = login
	return users
}

// readKeyFile reads the API key from path, warning when every user of the
// host may read the file.
func readKeyFile(path string, log *zap.Logger) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("crmsim: --apikey-file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("crmsim: --apikey-file %s is empty", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o004 != 0 {
		log.Warn("crmsim: --apikey-file is readable by every user of the host; chmod o-r it", zap.String("file", path))
	}
	return key, nil
}
