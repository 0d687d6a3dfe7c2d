package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
)

// Main is `go run ./tools/bench [flags]`: it runs the bench, prints the
// table to stdout and progress to stderr, and writes BENCHMARKS.md and the
// plot when asked. crm, when its URL is set (LEADRELAY_CRM_URL and friends,
// read by config in main), is a real CRM the real section measures.
func Main(ctx context.Context, args []string, crm RealCRM, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "a few leads per figure: seconds, not minutes (proves the bench works; figures too noisy to quote)")
	aof := fs.Bool("aof", false, "run redis-server with appendonly everysec, as deploy/redis.conf does")
	redisBin := fs.String("redis-server", "redis-server", "redis-server executable the bench starts on a free loopback port")
	only := fs.String("only", "", "comma-separated sections to run: "+strings.Join(allSections, ",")+" (real needs LEADRELAY_CRM_URL, _LOGIN, _APIKEY)")
	md := fs.String("md", "", "append the table to this Markdown file (e.g. BENCHMARKS.md)")
	png := fs.String("plot", "", "write the throughput plot to this PNG file (e.g. docs/bench.png)")
	label := fs.String("label", "", "name of the run in the Markdown file (e.g. a commit)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (LeadRelay and references alike) to this file")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: go run ./tools/bench [flags]\n\nMeasures LeadRelay against raw asynq references in one run, on a redis-server\nand a CRM simulator it starts itself. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench takes no arguments, got %q", fs.Args())
	}
	o := Options{Quick: *quick, AOF: *aof, RedisServer: *redisBin, Markdown: *md, Plot: *png, Label: *label, Progress: stderr, RealCRM: crm}
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			s = strings.TrimSpace(s)
			known := false
			for _, a := range allSections {
				known = known || a == s
			}
			if !known {
				return fmt.Errorf("bench: unknown section %q (have %s)", s, strings.Join(allSections, ", "))
			}
			o.Only = append(o.Only, s)
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := Run(ctx, o)
	if rep != nil {
		_ = rep.WriteTable(stdout)
	}
	return err
}
