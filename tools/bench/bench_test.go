package main

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"leadrelay/internal/redistest"
)

// TestQuickRun runs every section in quick mode against a private
// redis-server and checks that each produced its figures, the table, the
// Markdown and the plot. It asserts no timing: the figures are whatever
// this machine gives.
func TestQuickRun(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	md, plot := filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "bench.png")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Quick: true, RedisAddr: srv.Addr, Markdown: md, Plot: plot, Label: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Intake), len(intakeLevels)*5; got != want {
		t.Errorf("intake points: %d, want %d", got, want)
	}
	for _, p := range rep.Intake {
		if p.PerSec <= 0 || p.Failed != 0 {
			t.Errorf("intake %s C=%d: %.0f/s, %d failed", p.Variant, p.C, p.PerSec, p.Failed)
		}
	}
	sealed := 0
	for _, r := range rep.Rows() {
		if strings.HasPrefix(r.Figure, "accepted leads/s, JSON, sealed") {
			sealed++
		}
	}
	if sealed != len(intakeLevels) {
		t.Errorf("%d rows of sealing's cost, want one per intake level (%d)", sealed, len(intakeLevels))
	}
	if got, want := len(rep.Delivery), len(deliveryShapes)*3; got != want {
		t.Errorf("delivery points: %d, want %d", got, want)
	}
	for _, p := range rep.Delivery {
		if p.PerSec <= 0 || p.QueuedB <= 0 || p.FinishedB <= 0 {
			t.Errorf("delivery %s %d×%d: %.0f/s, %.0f B queued, %.0f B finished", p.Variant, p.Procs, p.Conc, p.PerSec, p.QueuedB, p.FinishedB)
		}
	}
	if len(rep.Workers) != 2 || rep.Workers[0].HWM <= 0 || rep.Workers[1].HWM <= 0 || rep.Workers[0].Anon <= 0 || rep.Workers[1].Anon <= 0 ||
		rep.Workers[0].Text <= 0 || rep.Workers[1].Text <= 0 {
		t.Errorf("worker processes' memory: %+v", rep.Workers)
	}
	if len(rep.Latency) != len(latencyConcs) || len(rep.Light) != 4+len(pollSweep) {
		t.Errorf("latency points %d, light points %d", len(rep.Latency), len(rep.Light))
	}

	for _, w := range poolSizes {
		if _, ok := rep.bestFixed(w); !ok {
			t.Errorf("no fixed-cap point for PHP pool %d", w)
		}
	}

	// The drains' correctness, never their pace: every lead queued in
	// the outage reached the CRM once, and the limit was not left at 1,
	// both for a new fleet and for one restarted in the outage.
	if len(rep.Drain) != 2*len(drainPools) {
		t.Errorf("drain points: %d, want %d (new and restarted fleets)", len(rep.Drain), 2*len(drainPools))
	}
	warm := 0
	for _, p := range rep.Drain {
		if p.Warm > 0 {
			warm++
		}
		if p.Delivered != p.Leads || p.Dups != 0 || p.Limit <= 1 {
			t.Errorf("drain %s: %d of %d delivered, %d twice, limit %.0f at the end; want all, none, above 1",
				p.CRM, p.Delivered, p.Leads, p.Dups, p.Limit)
		}
	}
	if warm != len(drainPools) {
		t.Errorf("drains of a restarted fleet: %d, want %d", warm, len(drainPools))
	}

	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, fig := range []string{
		"accepted leads/s, JSON, C=32", "accepted leads/s, drop-in, C=1", "ack latency p50 / p99",
		"delivered leads/s, 1×10, zero-latency CRM", "delivered leads/s, 2×10, vs no-op",
		"delivered leads/s, 1×40, 50ms CRM latency", "Redis bytes per queued lead",
		"Redis bytes per finished lead", "ack → CRM p50 / p99", "into an idle fleet", "idle Redis requests/s on the wire", "idle Redis commands/s", "PHP pool 4, 2×10, defaults", "RSS", "worker process peak RSS, 1×40",
		"of it private (anonymous) memory at its sampled peak", "of it the binary's resident pages",
		"drain of 150 leads queued in an outage, PHP pool 8",
	} {
		if !strings.Contains(table.String(), fig) {
			t.Errorf("table lacks %q:\n%s", fig, table.String())
		}
	}

	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), benchmarksHeader) || !strings.Contains(string(b), "| accepted leads/s, JSON, C=32 |") {
		t.Errorf("BENCHMARKS.md:\n%s", b)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("plot is not a PNG: %v", err)
	}
}

// TestAppendMarkdown keeps one header and puts the newest run first.
func TestAppendMarkdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	for _, label := range []string{"run-alpha", "run-beta"} {
		r := &Report{Started: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Label: label}
		if err := r.AppendMarkdown(path); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	if strings.Count(s, "# Benchmarks") != 1 {
		t.Errorf("header repeated:\n%s", s)
	}
	if i, j := strings.Index(s, "run-beta"), strings.Index(s, "run-alpha"); i < 0 || j < 0 || i > j {
		t.Errorf("newest run is not first:\n%s", s)
	}
}
