package crmsim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
	var f runFlags
	fs := f.flagSet(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("crmsim: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("crmsim: unexpected argument %q", fs.Arg(0))
	}
	level, err := f.check()
	if err != nil {
		return err
	}
	log := newRunLogger(stderr, level)
	defer func() { _ = log.Sync() }()

	key, err := f.key(log)
	if err != nil {
		return err
	}
	users := DefaultUsers()
	if f.login != "" {
		users = replaceCoordinator(users, f.login)
	}
	faults := f.faults()
	if err := faults.Validate(); err != nil { // the flags added with these faults are checked here
		return fmt.Errorf("crmsim: flags: %w", err)
	}
	sim, err := New(Config{API: f.api, APIKey: key, Users: users, DataFile: f.data, Seed: f.seed, Faults: faults, Logger: log})
	if err != nil {
		return err
	}
	defer sim.Close()
	return serveUntilDone(ctx, sim, f.addr, fmt.Sprintf("(api=%s, login=%s)", f.api, users[0].Login), stdout)
}

// runFlags are Run's command-line flags.
type runFlags struct {
	addr, api, login, apikey, apikeyFile, data string
	seed                                       int64
	errRate, ambRate, fatalRate, rl429         float64
	errStatus                                  int
	latency, outageFor                         time.Duration
	outageMode, fatalStyle, reject, logLevel   string
	v1Shipped, authFail, v1ListIgn             bool
	stampGap, lateDelay, whStall, whTime       time.Duration
	stampKill, lateRate                        float64
	phpWorkers, cpus                           int
}

func (f *runFlags) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("crmsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.addr, "addr", DefaultAddr, "listen address (keep it on loopback: the /_sim/ admin endpoints need no key)")
	fs.StringVar(&f.api, "api", APIBoth, "API versions to serve: v1, v2 or both")
	fs.StringVar(&f.login, "login", "", "login of the coordinator user (default admin@example.com); sales1@example.com and sales2@example.com also exist")
	fs.StringVar(&f.apikey, "apikey", "", "account API key (default \""+demoKey+"\", with a warning); visible to every user in the process list, prefer --apikey-file")
	fs.StringVar(&f.apikeyFile, "apikey-file", "", "file holding the account API key (a Docker secret such as /run/secrets/crm_apikey)")
	fs.StringVar(&f.data, "data", "", "JSON file that keeps the leads across restarts")
	fs.Int64Var(&f.seed, "seed", 1, "seed of the random source that draws faults")
	fs.Float64Var(&f.errRate, "error-rate", 0, "fraction of API requests answered with --error-status")
	fs.IntVar(&f.errStatus, "error-status", 500, "HTTP status for --error-rate: 500 or 503")
	fs.DurationVar(&f.latency, "latency", 0, "latency added to every API answer")
	fs.Float64Var(&f.ambRate, "ambiguous-rate", 0, "fraction of adds stored and then dropped without an answer")
	fs.Float64Var(&f.fatalRate, "fatal-rate", 0, "fraction of API requests answered with a PHP fatal error page")
	fs.BoolVar(&f.v1Shipped, "v1-shipped", false, "v1 behaves as shipped: add and info fail with a PHP fatal, list ignores parameters")
	fs.BoolVar(&f.authFail, "auth-fail", false, "answer every API request as a wrong key")
	fs.StringVar(&f.reject, "reject-marker", "", "fail adds whose title, description or email contains this text (error code 1)")
	fs.Float64Var(&f.rl429, "rate-limit-rate", 0, "fraction of API requests answered 429 with Retry-After: 1")
	fs.DurationVar(&f.outageFor, "outage", 0, "start with an outage of this length")
	fs.StringVar(&f.outageMode, "outage-mode", OutageHTTP503, "outage mode: 503 or refuse")
	fs.StringVar(&f.fatalStyle, "fatal-style", FatalHTML, "how PHP fatals answer: html (HTTP 200, error page), empty500 (HTTP 500, empty body: display_errors off), crm (the running CRM: v1 empty500, v2 html); with --v1-shipped --fatal-style crm, v1 add and info answer 500 empty on every call")
	fs.BoolVar(&f.v1ListIgn, "v1-list-ignores-params", false, "v1 list ignores every parameter (the newest 200), as shipped, while v1 add works")
	fs.DurationVar(&f.stampGap, "stamp-gap", 0, "v2 add stores the lead at once and its uids only after this gap (the CRM's webhook self-call, up to 5s)")
	fs.Float64Var(&f.stampKill, "stamp-kill-rate", 0, "fraction of v2 adds killed in that gap: the lead stays stored without its uids, the connection is dropped")
	fs.Float64Var(&f.lateRate, "late-commit-rate", 0, "fraction of adds that work --late-commit-delay before storing the lead, whether the client still waits or not")
	fs.DurationVar(&f.lateDelay, "late-commit-delay", defaultLateCommitDelay, "work time of a --late-commit-rate add; set it above the client's timeout")
	fs.IntVar(&f.phpWorkers, "php-workers", 0, "serve with this many PHP workers like the real CRM (requests beyond wait; a v2 add's webhook self-call waits up to --webhook-stall while all are busy, so overload collapses); 0 = unlimited. PHP's built-in server with PHP_CLI_SERVER_WORKERS=N behaves like N+2")
	fs.DurationVar(&f.whStall, "webhook-stall", defaultWebhookStall, "with --php-workers: longest wait of a v2 add's webhook self-call for a free worker")
	fs.IntVar(&f.cpus, "cpus", 0, "--latency is CPU time shared by the requests at work on this many CPUs, so it grows with concurrency (the real CRM: 2); 0 = a fixed sleep")
	fs.DurationVar(&f.whTime, "webhook-time", defaultWebhookTime, "with --php-workers: time a webhook self-call holds a worker")
	fs.StringVar(&f.logLevel, "log-level", "debug", "log level: debug (the default) logs every request, key redacted; info logs only warnings and the start")
	return fs
}

// check validates the flags that Faults.Validate does not, and returns the
// log level.
func (f *runFlags) check() (zapcore.Level, error) {
	var level zapcore.Level
	if f.api != APIv1 && f.api != APIv2 && f.api != APIBoth {
		return level, fmt.Errorf("crmsim: --api must be v1, v2 or both, got %q", f.api)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"error-rate", f.errRate}, {"ambiguous-rate", f.ambRate}, {"fatal-rate", f.fatalRate}, {"rate-limit-rate", f.rl429}} {
		if !(r.v >= 0 && r.v <= 1) {
			return level, fmt.Errorf("crmsim: --%s must be between 0 and 1, got %v", r.name, r.v)
		}
	}
	if f.errStatus != 500 && f.errStatus != 503 {
		return level, fmt.Errorf("crmsim: --error-status must be 500 or 503, got %d", f.errStatus)
	}
	if f.latency < 0 {
		return level, fmt.Errorf("crmsim: --latency must not be negative, got %s", f.latency)
	}
	if f.outageFor < 0 {
		return level, fmt.Errorf("crmsim: --outage must not be negative, got %s", f.outageFor)
	}
	if f.outageMode != OutageHTTP503 && f.outageMode != OutageRefuse {
		return level, fmt.Errorf("crmsim: --outage-mode must be 503 or refuse, got %q", f.outageMode)
	}
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return level, fmt.Errorf("crmsim: --log-level: %w", err)
	}
	if strings.TrimSpace(f.addr) == "" {
		return level, errors.New("crmsim: --addr must not be empty")
	}
	return level, nil
}

func newRunLogger(stderr io.Writer, level zapcore.Level) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(stderr)), level))
}

// key is the account API key: --apikey, --apikey-file or the demo key.
func (f *runFlags) key(log *zap.Logger) (string, error) {
	key := f.apikey
	if f.apikeyFile != "" {
		if key != "" {
			return "", errors.New("crmsim: --apikey and --apikey-file are both set; set one")
		}
		var err error
		if key, err = readKeyFile(f.apikeyFile, log); err != nil {
			return "", err
		}
	}
	if key == "" {
		key = demoKey
		log.Warn("crmsim: --apikey not set, using the demo key \"" + demoKey + "\"")
	}
	return key, nil
}

func (f *runFlags) faults() Faults {
	faults := Faults{
		ErrorRate: f.errRate, ErrorStatus: f.errStatus, Latency: Duration(f.latency),
		AmbiguousRate: f.ambRate, FatalRate: f.fatalRate, V1Shipped: f.v1Shipped,
		AuthFail: f.authFail, RejectMarker: f.reject, RateLimit429: f.rl429,
		FatalStyle: f.fatalStyle, V1ListIgnoresParams: f.v1ListIgn,
		StampGap: Duration(f.stampGap), StampKillRate: f.stampKill,
		LateCommitRate: f.lateRate, LateCommitDelay: Duration(f.lateDelay),
		PHPWorkers: f.phpWorkers, CPUs: f.cpus, WebhookStall: Duration(f.whStall), WebhookTime: Duration(f.whTime),
	}
	if f.outageFor > 0 {
		faults.Outage = &Outage{Mode: f.outageMode, For: Duration(f.outageFor)}
	}
	return faults
}

// serveUntilDone serves sim on addr until ctx is done, then closes both.
func serveUntilDone(ctx context.Context, sim *Sim, addr, about string, stdout io.Writer) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := NewServer(sim)
	if err := srv.Start(runCtx, addr); err != nil {
		return fmt.Errorf("crmsim: --addr %s: %w", addr, err)
	}
	fmt.Fprintf(stdout, "crmsim listening on http://%s %s\n", srv.Addr(), about)
	<-ctx.Done()
	err := srv.Close()
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
