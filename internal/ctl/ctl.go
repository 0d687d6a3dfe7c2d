package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/deadletter"
	"leadrelay/internal/app"
	"leadrelay/lead"
)

// Usage is the help text of `leadrelay ctl`.
const Usage = `Usage: leadrelay ctl [--json] <command> [flags]

Commands:
  queues [--site S]                       queue sizes, dead leads, delivered today, oldest pending; --site: one site's leads
  dead list [--site S] [--since D] [--limit N] [--offset N]
                                          dead leads, newest first
  dead show ID                            one dead lead: the lead, its metadata, its error history
  dead requeue ID… | --all [--site S] [--since D] [--progress N]
                                          hand dead leads back to the queue
  dead purge [--site S] [--since D] [--yes]
                                          delete dead leads for good (asks unless --yes)
  lead status ID                          queued, retrying, delivered (with CRM id) or dead (with reason)
  lead find --email E | --phone P         the relay's recent leads (what asynq retains, and dead ones) by e-mail or phone
  lead erase [--wait D] --email E | --phone P | [--id] ID…
                                          erase a person's leads from every store in Redis (README, "Privacy");
                                          reports what it removed and what it cannot reach; audit line on stderr
  crm stat [--since YYYY-MM-DD --until YYYY-MM-DD]
                                          per CRM operator: leads in work and processed (new leads: crm list)
  crm info ID
  crm list [--since YYYY-MM-DD --until YYYY-MM-DD] [--page N | --all]
  import --site S [--no-progress] FILE.csv|FILE.jsonl
                                          queue leads from a file (columns: lead fields, idempotency_key);
                                          prints accepted, duplicate and refused leads with line numbers
  rekey [--progress N]                    re-seal every stored lead (queued, retrying, archived, completed, dead)
                                          under the first of LEADRELAY_DATA_KEYS; run it again after a stop
  audit [--now]                           the workers' latest CRM audit: leads made twice in the CRM, delivered
                                          leads it does not list; --now reads the CRM now
  health [--url URL] [--timeout D]        exit 0 when URL answers 200 (default: LEADRELAY_HTTP_ADDR/healthz)
  sites check FILE                        check a sites file (LEADRELAY_SITES_FILE) as intake loads it: every
                                          problem (exit 1), or its sites; never prints a key

D is a duration back from now (90m, 24h, 7d), a date (2026-03-01) or an RFC 3339 time.
--json prints JSON for scripts. Exit codes: 0 ok, 1 failure, 2 usage error, 3 not found.
`

// UsageError is a command line ctl cannot run: an unknown command, a bad
// flag or argument. ExitCode maps it to 2.
type UsageError struct {
	// Msg says what is wrong.
	Msg string
}

// Error returns Msg.
func (e *UsageError) Error() string { return e.Msg }

// NotFoundError is a lead (or CRM lead) that does not exist. ExitCode maps
// it to 3.
type NotFoundError struct {
	// What is the kind of thing looked for, e.g. "dead lead".
	What string
	// ID is the id looked for.
	ID string
}

// Error returns "<what> <id> not found".
func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %s not found", e.What, e.ID) }

// ErrAborted is returned when the operator does not confirm a purge.
// ExitCode maps it to 1: nothing was done.
var ErrAborted = errors.New("aborted: nothing deleted")

// Exit codes of ctl, as ExitCode returns them.
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitUsage    = 2
	ExitNotFound = 3
)

// ExitCode maps an error from Run to the process exit code: 0 for nil, 2
// for a *UsageError, 3 for a *NotFoundError, 1 for anything else (Redis or
// CRM unreachable, a refused action, an unconfirmed purge).
func ExitCode(err error) int {
	var ue *UsageError
	var nf *NotFoundError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &nf):
		return ExitNotFound
	}
	return ExitFailure
}

// Options are what Run takes from its surroundings besides args and config.
// The zero value reads nothing from stdin (a purge without --yes aborts),
// logs nothing and uses the real clock.
type Options struct {
	// Stdin answers the purge confirmation.
	Stdin io.Reader
	// Log receives connection warnings; nil discards them.
	Log *zap.Logger
	// Now is the clock for ages and --since; nil = time.Now.
	Now func() time.Time
	// ConfigProblems are the configuration's problems (config.LoadLenient).
	// A command fails on those of the settings it uses only, so a bad
	// worker-only setting does not stop `ctl queues`. Nil: none.
	ConfigProblems config.Problems
}

// Run runs `leadrelay ctl args…` with the confirmation read from os.Stdin.
// See RunWith.
func Run(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	return RunWith(ctx, args, cfg, stdout, stderr, Options{Stdin: os.Stdin})
}

// RunWith runs `leadrelay ctl args…`: results go to stdout, prompts and
// progress to stderr. The error's type gives the exit code (ExitCode). It
// never prints the CRM key.
func RunWith(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer, o Options) error {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &cli{ctx: ctx, cfg: cfg, o: o, out: stdout, errw: stderr}
	defer c.close()
	err := c.run(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s\n\n%s", ue.Msg, Usage)
	}
	return err
}

// cli is one invocation: its config, its writers and lazily opened
// connections.
type cli struct {
	ctx       context.Context
	cfg       config.Config
	o         Options
	out, errw io.Writer
	json      bool

	rds  *app.Redis
	crm  *app.CRM
	insp *asynq.Inspector
	dead *deadletter.Store
	// codec opens lead payloads with the configured data keys (none: only
	// plaintext ones open; a sealed one shows its envelope).
	codec lead.Codec
}

func (c *cli) close() {
	if c.crm != nil {
		c.crm.Close()
	}
	if c.rds != nil {
		_ = c.rds.Close()
	}
}

func (c *cli) run(args []string) error {
	fs := c.flags("ctl")
	rest, err := parseLeading(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return &UsageError{"ctl: no command given"}
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		c.usage()
		return nil
	}
	if run, ok := commands[name]; ok {
		return run(c, rest)
	}
	if !isGroup(name) {
		return &UsageError{fmt.Sprintf("ctl: unknown command %q", name)}
	}
	if len(rest) == 0 {
		return &UsageError{fmt.Sprintf("ctl %s: no subcommand given", name)}
	}
	if run, ok := commands[name+" "+rest[0]]; ok {
		return run(c, rest[1:])
	}
	return &UsageError{fmt.Sprintf("ctl %s: unknown subcommand %q", name, rest[0])}
}

// commands are ctl's commands by the words that name them (Usage lists
// them); a two-word name is a subcommand of the group its first word names.
var commands = map[string]func(*cli, []string) error{
	"queues":       (*cli).queues,
	"lead status":  (*cli).leadStatus,
	"lead find":    (*cli).leadFind,
	"lead erase":   (*cli).leadErase,
	"dead list":    (*cli).deadList,
	"dead show":    (*cli).deadShow,
	"dead requeue": (*cli).deadRequeue,
	"dead purge":   (*cli).deadPurge,
	"crm stat":     (*cli).crmStat,
	"crm info":     (*cli).crmInfo,
	"crm list":     (*cli).crmList,
	"health":       (*cli).health,
	"import":       (*cli).importLeads,
	"sites check":  (*cli).sitesCheck,
	"rekey":        (*cli).rekey,
	"audit":        (*cli).auditCmd,
}

// isGroup reports whether name is the first word of subcommands.
func isGroup(name string) bool {
	for k := range commands {
		if strings.HasPrefix(k, name+" ") {
			return true
		}
	}
	return false
}

// flags returns a flag set that knows --json; -h and --help print its
// flags (for "ctl" itself, the whole usage) to stdout.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.errw)
	fs.BoolVar(&c.json, "json", c.json, "print JSON")
	fs.Usage = func() {
		if name == "ctl" {
			c.usage()
			return
		}
		fmt.Fprintf(c.out, "Usage: leadrelay ctl %s [flags]\n\nFlags:\n", name)
		fs.SetOutput(c.out)
		fs.PrintDefaults()
		fs.SetOutput(c.errw)
	}
	return fs
}

// usage prints Usage and the settings ctl reads.
func (c *cli) usage() {
	fmt.Fprint(c.out, Usage)
	fmt.Fprintln(c.out, "\nEnvironment (the same settings as the relay's; README.md#configuration):")
	for _, v := range config.Vars() {
		if slices.Contains(config.RedisVars, v.Name) || slices.Contains(config.CRMVars, v.Name) || v.Name == "LEADRELAY_HTTP_ADDR" {
			fmt.Fprintf(c.out, "  %s\n", v.Name)
		}
	}
}

// parseLeading parses flags up to the first argument (the command).
func parseLeading(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, usage(err)
	}
	return fs.Args(), nil
}

// parse parses flags anywhere among the arguments and returns the
// arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usage(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func usage(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &UsageError{err.Error()}
}

// parseArgs parses fs (the command's flag set, named for it) over args,
// flags anywhere among the arguments, and returns the n positional
// arguments; any other count is a usage error.
func parseArgs(fs *flag.FlagSet, args []string, n int) ([]string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != n {
		return nil, &UsageError{fmt.Sprintf("ctl %s: want %d argument(s), got %d", fs.Name(), n, len(pos))}
	}
	return pos, nil
}

// redis opens Redis (LEADRELAY_REDIS_URL, never embedded) and checks that
// it answers.
func (c *cli) redis() error {
	if c.rds != nil {
		return nil
	}
	if err := c.o.ConfigProblems.For(config.RedisVars...); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	rds, err := app.OpenRedis(c.ctx, c.cfg, false, c.o.Log)
	if err != nil {
		return err
	}
	c.rds = rds
	pctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if err := rds.Client.Ping(pctx).Err(); err != nil {
		return unreachable(c.cfg, err)
	}
	c.insp = asynq.NewInspectorFromRedisClient(rds.Client)
	c.codec = lead.NewCodec(c.cfg.Data.Keys)
	c.dead = deadletter.New(rds.Client, deadletter.Options{MaxRetry: c.cfg.Queue.MaxRetry, Retention: c.cfg.Queue.DedupTTL, Codec: c.codec})
	return nil
}

// redisData is redis for a command that reads or writes a lead's fields:
// it fails on a problem of the data keys' settings too.
func (c *cli) redisData() error {
	if err := c.o.ConfigProblems.For(config.DataVars...); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	return c.redis()
}

// emit prints v as indented JSON.
func (c *cli) emit(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// emitList prints items as a JSON array: [] when there are none, never null.
func emitList[T any](c *cli, items []T) error {
	if items == nil {
		items = []T{}
	}
	return c.emit(items)
}

// table returns a tabwriter on stdout; call Flush.
func (c *cli) table() *tabwriter.Writer {
	return tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
}

// kvRow writes one row of a key-value table: k, a tab, v. An empty v
// writes nothing, so a table shows only what is known.
func kvRow(tw io.Writer, k, v string) {
	if v != "" {
		fmt.Fprintf(tw, "%s\t%s\n", k, v)
	}
}

// leadRows writes a lead's fields as indented key-value rows, each value
// clipped; empty fields write nothing.
func leadRows(tw io.Writer, l *lead.Lead) {
	for _, f := range lead.Fields() {
		kvRow(tw, "  "+f.Name, clip(*f.Of(l), 200))
	}
}

// parseSince reads a point in time: a duration back from now (90m, 24h,
// 7d), a date (YYYY-MM-DD, UTC) or RFC 3339.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, &UsageError{fmt.Sprintf("--since %q: want a duration (24h, 7d), a date (2026-03-01) or an RFC 3339 time", s)}
}

// parseDate reads YYYY-MM-DD for the CRM's date filters.
func parseDate(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, &UsageError{fmt.Sprintf("--%s %q: want YYYY-MM-DD", flagName, s)}
	}
	return t, nil
}

// age renders a duration the way operators read it: 42s, 5m3s, 3h12m, 4d2h.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// clip shortens s to n runes for a table cell, on one line, with no
// control characters: cells show CRM and lead data, and an escape sequence
// in them would drive the operator's terminal.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(sanitize(s)), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// sanitize drops control characters (C0, DEL, C1: ESC starts terminal
// escape sequences, U+009B is CSI) and bidirectional overrides, which can
// make text read differently from what it is. Whitespace becomes a space.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// stamp formats a time for tables; "-" for zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

// unreachable says which Redis did not answer (its addresses, never a password) and which variable names it.
func unreachable(cfg config.Config, err error) error {
	from := "LEADRELAY_REDIS_URL"
	if cfg.Redis.URL == "" && cfg.Redis.Mode == config.RedisCluster {
		from = "LEADRELAY_REDIS_CLUSTER"
	}
	return fmt.Errorf("redis at %s is unreachable (is it running? %s names it): %w", strings.Join(cfg.Redis.Addrs, ","), from, err)
}
