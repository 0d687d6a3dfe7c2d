package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/redis/go-redis/v9"

	"leadrelay/config"
	"leadrelay/internal/app"
	"leadrelay/internal/ctl"
)

const usage = `leadrelay: relays web-site leads into the SalesMan CRM, exactly once.

Usage: leadrelay <command> [flags]

Commands:
  serve     intake + worker + ops UI in one process; with no LEADRELAY_REDIS_URL
            and no LEADRELAY_CRM_URL it embeds Redis and a CRM simulator (demo mode)
  intake    only the HTTP intake and the ops UI (needs LEADRELAY_REDIS_URL)
  worker    only delivery to the CRM; start as many as you like against one Redis
  ctl       operator commands: queues, dead letters, lead status, CRM reads (see: leadrelay ctl help)
  version   print the version

Settings come from LEADRELAY_* environment variables; each command's --help
lists the ones it reads (README.md#configuration says what they mean).
`

// usageError marks a command line that is wrong; main exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitCode maps an error to the exit status scripts rely on: 2 for a wrong
// command line, ctl's codes (3 = not found) for ctl, 1 otherwise.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return ctl.ExitCode(err)
}

// run is the whole program behind main, callable from tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	redis.SetLogger(redisLogger{})
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runRoles(ctx, cmd, rest, getenv, stdout, stderr, app.Roles{Intake: true, Worker: true, Embedded: true})
	case "intake":
		return runRoles(ctx, cmd, rest, getenv, stdout, stderr, app.Roles{Intake: true})
	case "worker":
		return runRoles(ctx, cmd, rest, getenv, stdout, stderr, app.Roles{Worker: true})
	case "ctl":
		// ctl checks only the settings each of its commands uses: a bad
		// worker-only setting must not stop an operator from reading queues.
		cfg, problems := config.LoadLenient(getenv)
		return ctl.RunWith(ctx, rest, cfg, stdout, stderr, ctl.Options{Stdin: os.Stdin, ConfigProblems: problems})
	case "version", "--version":
		fmt.Fprintln(stdout, "leadrelay", app.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	if tool, ok := movedOut[cmd]; ok {
		return &usageError{fmt.Sprintf("%s is not part of the relay binary; from the source tree run: %s", cmd, tool)}
	}
	fmt.Fprint(stderr, usage)
	return &usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// movedOut are the lab's former subcommands, now commands of their own so
// the relay links only what runs in production; asking for one names it.
var movedOut = map[string]string{
	"bench":  "go run ./tools/bench",
	"crmsim": "go run ./tools/crmsim",
}

func runRoles(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer, roles app.Roles) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address (overrides LEADRELAY_HTTP_ADDR)")
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: leadrelay %s [--addr ADDR]\n\n%s\n\nFlags:\n", name, roleHelp[name])
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		printVars(stdout, roleVars(name))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s takes no arguments, got %q", name, fs.Args())}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	if *addr != "" {
		cfg.SetHTTPAddr(*addr)
	}
	log := app.NewLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()
	redisLog.Store(log.Named("go-redis"))
	return app.Run(ctx, cfg, roles, stdout, log)
}
