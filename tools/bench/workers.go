package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"leadrelay/crmsim"
)

// The workers section builds and runs each worker as a process of its
// own, so its resident memory is its own: the relay binary's worker
// (leadrelay worker, as operators run it) and the raw reference
// (tools/bench/rawworker: an asynq server making the same CRM call).

// workerShape is the workers section's shape: the 1×40.
var workerShape = shape{1, 40}

// workers measures the peak resident memory of a LeadRelay worker process
// and of a raw asynq server process delivering the same leads.
func (b *bench) workers(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "leadrelay-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins := map[string]string{deliveryRaw: filepath.Join(dir, "rawworker"), deliveryRelay: filepath.Join(dir, "leadrelay")}
	for v, pkg := range map[string]string{deliveryRaw: "leadrelay/tools/bench/rawworker", deliveryRelay: "leadrelay/cmd/leadrelay"} {
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bins[v], pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	c, err := startCRM(crmsim.Faults{})
	if err != nil {
		return err
	}
	defer c.close()
	for _, v := range []string{deliveryRaw, deliveryRelay} {
		p, err := b.workerProcess(ctx, bins[v], c, v)
		if err != nil {
			return fmt.Errorf("%s: %w", v, err)
		}
		if p.Text, err = textSize(bins[v]); err != nil {
			return fmt.Errorf("%s: %w", v, err)
		}
		b.logf("workers %-34s %s  peak RSS %5.1f MiB  at the end %5.1f MiB  private at its peak %5.1f MiB (binary pages %5.1f MiB)",
			v, workerShape, p.HWM/(1<<20), p.RSS/(1<<20), p.Anon/(1<<20), p.File/(1<<20))
		b.rep.Workers = append(b.rep.Workers, p)
	}
	return nil
}

// workerProcess queues the section's leads, starts one worker process of
// the variant (the binary bin), waits until the CRM has them all and
// reads the process's memory before it stops it.
func (b *bench) workerProcess(ctx context.Context, bin string, c *crm, variant string) (WorkerRSSPoint, error) {
	p := WorkerRSSPoint{Variant: variant, Procs: workerShape.procs, Conc: workerShape.conc}
	if err := b.flush(ctx); err != nil {
		return p, err
	}
	n := b.sz.deliveryLeads
	run := fmt.Sprintf("w%d", time.Now().UnixNano())
	if err := b.preload(ctx, variant == deliveryRelay, run, n); err != nil {
		return p, err
	}
	done := c.expect(n, false)
	cmd := exec.CommandContext(ctx, bin, b.addr, c.url, strconv.Itoa(workerShape.conc))
	if variant == deliveryRelay {
		cmd = exec.CommandContext(ctx, bin, "worker")
		cmd.Env = os.Environ()
		for k, v := range b.env(c, map[string]string{"LEADRELAY_CONCURRENCY": strconv.Itoa(workerShape.conc)}) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return p, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	peak := samplePrivate(pid)
	err := awaitDelivered(ctx, done, &c.counter, n)
	p.Anon, p.File = peak()
	if err != nil {
		stop()
		return p, err
	}
	m, ok := procMemory(pid)
	stop()
	if !ok {
		return p, errors.New("no /proc status of the worker process")
	}
	p.RSS, p.HWM = m.rss, m.hwm
	return p, nil
}

// samplePrivate samples the process's memory every 20 ms until the
// returned func is called, which stops it and returns the most private
// (anonymous) memory seen and the file-backed pages of that sample. The
// kernel keeps a peak only of the sum (VmHWM), so the split is sampled.
func samplePrivate(pid string) (peak func() (anon, file float64)) {
	stop, done := make(chan struct{}), make(chan struct{})
	var top memStat
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if m, ok := procMemory(pid); ok && m.anon > top.anon {
				top = m
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (float64, float64) {
		close(stop)
		<-done
		return top.anon, top.file
	}
}

// textSize is the size of the code in the executable bin: its ELF .text
// section. Go's linker keeps every exported method of every type that
// can sit in an interface once a text/template or html/template
// execution is reachable (a template may call any method by name), which
// asynqmon's index page makes so in the relay: its .text shows that cost.
func textSize(bin string) (float64, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return 0, fmt.Errorf("read the binary's sections: %w", err)
	}
	defer f.Close()
	sec := f.Section(".text")
	if sec == nil {
		return 0, fmt.Errorf("%s has no .text section", bin)
	}
	return float64(sec.Size), nil
}
