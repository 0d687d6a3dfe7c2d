package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Report is what one run measured. Rows turns it into the table.
type Report struct {
	// Started and Finished bound the run.
	Started, Finished time.Time
	// Quick says the run used quick sizes.
	Quick bool
	// AOF says the bench's Redis ran with appendonly.
	AOF bool
	// Label names the run (e.g. a commit).
	Label string
	// RedisVersion is the server's version.
	RedisVersion string

	// Intake holds one point per variant and client concurrency.
	Intake []IntakePoint
	// Delivery holds one point per variant and shape.
	Delivery []DeliveryPoint
	// Latency holds the deliveries against a slow CRM.
	Latency []LatencyPoint
	// Light holds the light-load latencies.
	Light []LightPoint
	// Pool holds the PHP-pool sweeps.
	Pool []PoolPoint
	// Real holds the real CRM's direct rates (Conc = parallel requests) and
	// LeadRelay's with defaults (Conc 0).
	Real []PoolPoint
	// Drain holds the drains after an outage.
	Drain []DrainPoint
	// RSS is the bench process's memory after each section.
	RSS []RSSPoint
	// Workers is the resident memory of worker processes (section
	// workers): LeadRelay's and a raw asynq server's.
	Workers []WorkerRSSPoint
}

// IntakePoint is one intake measurement.
type IntakePoint struct {
	Variant  string
	C        int
	PerSec   float64
	P50, P99 time.Duration
	Failed   int
	// Trips is Redis requests per accepted lead; RedisCPU and ProcCPU
	// are Redis's and the bench process's CPU time per accepted lead, in
	// seconds (the process holds the HTTP clients and every server).
	Trips, RedisCPU, ProcCPU float64
}

// DeliveryPoint is one delivery measurement.
type DeliveryPoint struct {
	Variant            string
	Procs, Conc        int
	PerSec             float64
	QueuedB, FinishedB float64
	// Trips and Cmds are Redis requests and commands per delivered lead.
	Trips, Cmds float64
	// RedisCPU is redis-server's CPU time (user and system) per delivered
	// lead, in seconds, and RedisBusy that time over the run's: near 1,
	// Redis's one thread is what bounds the rate.
	RedisCPU, RedisBusy float64
	// ProcCPU is the bench process's CPU time per delivered lead, in
	// seconds: the workers (in process) and the simulated CRM.
	ProcCPU float64
}

// LatencyPoint is LeadRelay against a CRM with latency.
type LatencyPoint struct {
	Conc int
	// PerSec is LeadRelay's rate, Raw the raw asynq server's (with the
	// same crmclient.Add; 0 in reports before it) and Bound C/L.
	PerSec, Raw, Bound float64
}

// LightPoint is one light-load latency measurement.
type LightPoint struct {
	Name string
	// Every is the gap between leads (zero in reports before it: 50 ms).
	Every    time.Duration
	P50, P99 time.Duration
	// IdleCmds is Redis commands per second while the queue is empty
	// (those scripts run included), and IdleReqs the requests on the wire
	// (a pipeline or a script call is one): the target counts
	// requests.
	IdleCmds, IdleReqs float64
}

// PoolPoint is throughput against a CRM with a fixed PHP pool.
type PoolPoint struct {
	Pool int
	// Conc is the fixed LEADRELAY_CRM_MAX_CONCURRENT, or 0 for the defaults.
	Conc   int
	PerSec float64
	// Limit is where the adaptive limit stood at the end (defaults only).
	Limit float64
	// Sweep numbers the real CRM's direct sweeps: 1 before LeadRelay's run,
	// 2 after it (0 in the pool section).
	Sweep int
}

// RSSPoint is the process's resident memory after a section.
type RSSPoint struct {
	After    string
	RSS, HWM float64 // bytes
}

// WorkerRSSPoint is one worker process's resident memory once it
// delivered the section's leads.
type WorkerRSSPoint struct {
	Variant     string
	Procs, Conc int
	RSS, HWM    float64 // bytes
	// Anon is the most private (anonymous) memory sampled while the
	// process delivered, and File the binary's and libraries' resident
	// pages in that sample: clean pages shared with every process of the
	// same binary, which the kernel may drop and read back.
	Anon, File float64 // bytes
	// Text is the size of the binary's code (its ELF .text section).
	// Most of it is resident while a worker runs: the kernel maps each
	// faulted page's cached neighbours with it.
	Text float64 // bytes
}

// Light-load names of the default runs.
const (
	lightDefault   = "LeadRelay, default poll"
	lightIdleFleet = "LeadRelay into an idle fleet"
	lightRaw       = "raw asynq, default poll"
)

func (r *Report) addIntake(v string, c int, res loadResult) {
	n := float64(max(res.ok, 1))
	r.Intake = append(r.Intake, IntakePoint{Variant: v, C: c, PerSec: res.perSec, P50: pct(res.lat, .5), P99: pct(res.lat, .99), Failed: res.failed,
		Trips: res.redis.reads / n, RedisCPU: res.redis.cpu / n, ProcCPU: res.procCPU.Seconds() / n})
}

func (r *Report) addDelivery(v string, s shape, res deliveryResult) {
	r.Delivery = append(r.Delivery, DeliveryPoint{Variant: v, Procs: s.procs, Conc: s.conc, PerSec: res.perSec, QueuedB: res.queuedB, FinishedB: res.finishedB,
		Trips: res.trips, Cmds: res.cmds, RedisCPU: res.redisCPU, RedisBusy: res.redisBusy, ProcCPU: res.procCPU})
}

func (r *Report) addLight(name string, every time.Duration, lat []time.Duration, idle idleLoad) {
	r.Light = append(r.Light, LightPoint{Name: name, Every: every, P50: pct(lat, .5), P99: pct(lat, .99),
		IdleCmds: idle.cmds, IdleReqs: idle.reqs})
}

// figure names a light point's latency: "ack → CRM p50 / p99, 1 lead / 50ms, name".
func (p LightPoint) figure() string {
	every := p.Every
	if every == 0 {
		every = lightInterval
	}
	return "ack → CRM p50 / p99, 1 lead / " + every.String() + ", " + p.Name
}

// rss notes the process's resident memory (Linux; elsewhere nothing).
func (r *Report) rss(after string) {
	if m, ok := procMemory("self"); ok {
		r.RSS = append(r.RSS, RSSPoint{After: after, RSS: m.rss, HWM: m.hwm})
	}
}

// memStat is a process's memory from /proc/<pid>/status, in bytes.
type memStat struct {
	rss, hwm   float64 // VmRSS, VmHWM
	anon, file float64 // RssAnon, RssFile
}

// procMemory reads a process's memory from /proc/<pid>/status; ok is
// false where there is none (not Linux, a process gone).
func procMemory(pid string) (m memStat, ok bool) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return m, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.rss = kb * 1024
		case "VmHWM":
			m.hwm = kb * 1024
		case "RssAnon":
			m.anon = kb * 1024
		case "RssFile":
			m.file = kb * 1024
		}
	}
	return m, m.rss > 0
}

// Row is one line of the table.
type Row struct {
	Figure, Value, Reference, Ratio, Target string
}

func (r *Report) intakeAt(v string, c int) (IntakePoint, bool) {
	for _, p := range r.Intake {
		if p.Variant == v && p.C == c {
			return p, true
		}
	}
	return IntakePoint{}, false
}

func (r *Report) deliveryAt(v string, procs, conc int) (DeliveryPoint, bool) {
	for _, p := range r.Delivery {
		if p.Variant == v && p.Procs == procs && p.Conc == conc {
			return p, true
		}
	}
	return DeliveryPoint{}, false
}

func (r *Report) light(name string) (LightPoint, bool) {
	for _, p := range r.Light {
		if p.Name == name {
			return p, true
		}
	}
	return LightPoint{}, false
}

// Rows is the table: each figure with its reference from the same run,
// the ratio LeadRelay / reference and the target where it has one.
func (r *Report) Rows() []Row {
	var rows []Row
	for _, part := range []func() []Row{r.intakeRows, r.deliveryRows, r.redisBytesRows, r.lightRows,
		r.idleRows, r.poolRows, r.realRows, r.drainRows, r.workerRows, r.rssRows} {
		rows = append(rows, part()...)
	}
	return rows
}

// intakeRows compare intake's accepted leads/s and ack latency with bare
// net/http and with raw enqueues.
func (r *Report) intakeRows() []Row {
	var rows []Row
	for _, v := range []struct{ name, label string }{{intakeJSON, "JSON"}, {intakeDropIn, "drop-in"}} {
		for _, c := range intakeLevels {
			p, ok1 := r.intakeAt(v.name, c)
			ref, ok2 := r.intakeAt(intakeBare, c)
			if !ok1 || !ok2 {
				continue
			}
			target := ""
			if c == 32 && v.name == intakeJSON {
				target = "≥ 0.9" // issue 20's; the filing measured 0.85
			}
			rows = append(rows, ratioRow(fmt.Sprintf("accepted leads/s, %s, C=%d", v.label, c), p.PerSec, "bare net/http + asynq", ref.PerSec, "%.0f", target, true))
		}
	}
	for _, c := range intakeLevels {
		p, ok1 := r.intakeAt(intakeJSON, c)
		ref, ok2 := r.intakeAt(intakePlain, c)
		if ok1 && ok2 {
			rows = append(rows, ratioRow(fmt.Sprintf("accepted leads/s, JSON, sealed, C=%d", c), p.PerSec, "the same intake unsealed", ref.PerSec, "%.0f", "", true))
		}
	}
	if p, ok := r.intakeAt(intakeJSON, 32); ok {
		if ref, ok := r.intakeAt(intakeRaw, 32); ok {
			rows = append(rows, ratioRow("accepted leads/s, JSON, C=32", p.PerSec, "raw Client.Enqueue, 32 goroutines", ref.PerSec, "%.0f", "", true))
		}
		if ref, ok := r.intakeAt(intakeBare, 32); ok {
			rows = append(rows, Row{Figure: "ack latency p50 / p99, JSON, C=32", Value: ms2(p.P50, p.P99),
				Reference: "bare net/http + asynq: " + ms2(ref.P50, ref.P99)},
				ratioRow("Redis round trips per accepted lead, JSON, C=32", p.Trips, "bare net/http + asynq", ref.Trips, "%.1f", "", false),
				ratioRow("redis-server CPU µs per accepted lead, JSON, C=32", p.RedisCPU*1e6, "bare net/http + asynq", ref.RedisCPU*1e6, "%.0f", "", false),
				ratioRow("bench process CPU µs per accepted lead (HTTP clients and servers), JSON, C=32",
					p.ProcCPU*1e6, "bare net/http + asynq", ref.ProcCPU*1e6, "%.0f", "", false))
		}
	}
	return rows
}

// deliveryRows compare delivered leads/s with a raw server, a no-op one
// and the bound a CRM's latency sets.
func (r *Report) deliveryRows() []Row {
	var rows []Row
	for _, s := range deliveryShapes {
		p, ok1 := r.deliveryAt(deliveryRelay, s.procs, s.conc)
		ref, ok2 := r.deliveryAt(deliveryRaw, s.procs, s.conc)
		if ok1 && ok2 {
			target := ""
			if s == (shape{1, 10}) || s == (shape{1, 40}) {
				target = "≥ 0.85"
			}
			rows = append(rows, ratioRow("delivered leads/s, "+s.String()+", zero-latency CRM", p.PerSec, "raw server + same crmclient.Add", ref.PerSec, "%.0f", target, true),
				ratioRow("Redis round trips per delivered lead, "+s.String(), p.Trips, "raw server", ref.Trips, "%.1f", "", false),
				ratioRow(fmt.Sprintf("redis-server CPU µs per delivered lead, %s (busy %.0f%% vs %.0f%%)", s, 100*p.RedisBusy, 100*ref.RedisBusy),
					p.RedisCPU*1e6, "raw server", ref.RedisCPU*1e6, "%.0f", "", false),
				ratioRow("bench process CPU µs per delivered lead (workers and simulated CRM), "+s.String(),
					p.ProcCPU*1e6, "raw server", ref.ProcCPU*1e6, "%.0f", "", false))
		}
		if noop, ok := r.deliveryAt(deliveryNoop, s.procs, s.conc); ok && ok1 {
			rows = append(rows, ratioRow("delivered leads/s, "+s.String()+", vs no-op", p.PerSec, "raw asynq no-op server", noop.PerSec, "%.0f", "", true))
		}
	}
	for _, p := range r.Latency {
		fig := fmt.Sprintf("delivered leads/s, 1×%d, %s CRM latency", p.Conc, crmLatency)
		rows = append(rows, ratioRow(fig, p.PerSec, "bound C/L", p.Bound, "%.0f", "≥ 0.95", true))
		if p.Raw > 0 {
			rows = append(rows, ratioRow(fig+", raw server + same crmclient.Add", p.Raw, "bound C/L", p.Bound, "%.0f", "", true),
				ratioRow(fig, p.PerSec, "raw server + same crmclient.Add", p.Raw, "%.0f", "", true))
		}
	}
	return rows
}

// redisBytesRows compare the Redis memory a lead takes, queued and
// finished, with a raw asynq task's, averaged over the delivery runs.
func (r *Report) redisBytesRows() []Row {
	var lq, lf, rq, rf float64
	var n, m int
	for _, p := range r.Delivery {
		switch p.Variant {
		case deliveryRelay:
			lq, lf, n = lq+p.QueuedB, lf+p.FinishedB, n+1
		case deliveryRaw:
			rq, rf, m = rq+p.QueuedB, rf+p.FinishedB, m+1
		}
	}
	if n == 0 || m == 0 {
		return nil
	}
	return []Row{
		ratioRow("Redis bytes per queued lead", lq/float64(n), "raw asynq task, same payload", rq/float64(m), "%.0f", "≤ 1.05", false),
		ratioRow("Redis bytes per finished lead (kept 24 h)", lf/float64(n), "raw asynq task, same payload", rf/float64(m), "%.0f", "≤ 1.15", false),
	}
}

// lightRows give a lone lead's latency under light load, the default
// first, with raw asynq's beside it.
func (r *Report) lightRows() []Row {
	var rows []Row
	if p, ok := r.light(lightDefault); ok {
		ref := ""
		if raw, ok := r.light(lightRaw); ok {
			ref = "raw asynq: " + ms2(raw.P50, raw.P99)
		}
		rows = append(rows, Row{Figure: p.figure(), Value: ms2(p.P50, p.P99), Reference: ref, Target: latencyTarget(p)})
	}
	for _, p := range r.Light {
		if p.Name == lightDefault || p.Name == lightRaw {
			continue
		}
		rows = append(rows, Row{Figure: p.figure(), Value: ms2(p.P50, p.P99), Target: latencyTarget(p)})
	}
	return rows
}

// idleRows compare the Redis commands an idle relay sends with raw asynq's.
func (r *Report) idleRows() []Row {
	p, ok := r.light(lightDefault)
	if !ok {
		return nil
	}
	var rows []Row
	if raw, ok := r.light(lightRaw); ok {
		row := ratioRow("idle Redis requests/s on the wire, "+lightDefault, p.IdleReqs, lightRaw, raw.IdleReqs, "%.2f", "", false)
		row.Target = "≤ 2 " + mark(p.IdleReqs <= 2)
		rows = append(rows, row,
			ratioRow("idle Redis commands/s (scripts' included), "+lightDefault, p.IdleCmds, lightRaw, raw.IdleCmds, "%.2f", "", false))
	}
	raw, _ := r.light(lightRaw)
	for _, q := range r.Light {
		switch {
		case q.Name == lightDefault || q.Name == lightRaw || q.Name == lightIdleFleet:
		case strings.HasPrefix(q.Name, "raw"):
			rows = append(rows, ratioRow("idle Redis commands/s, "+q.Name, q.IdleCmds, lightRaw, raw.IdleCmds, "%.1f", "", false))
		default:
			rows = append(rows, ratioRow("idle Redis commands/s, "+q.Name, q.IdleCmds, lightDefault, p.IdleCmds, "%.1f", "", false))
		}
	}
	return rows
}

// workerRows compare a LeadRelay worker's peak resident memory with a raw
// asynq server's at the same concurrency.
func (r *Report) workerRows() []Row {
	var rows []Row
	for _, p := range r.Workers {
		if p.Variant != deliveryRelay {
			continue
		}
		for _, ref := range r.Workers {
			if ref.Variant == deliveryRaw && ref.Procs == p.Procs && ref.Conc == p.Conc {
				s := shape{p.Procs, p.Conc}
				rows = append(rows, ratioRow("worker process peak RSS, "+s.String(), p.HWM/(1<<20),
					"raw asynq server + same crmclient.Add", ref.HWM/(1<<20), "%.1f MiB", "≤ 1.3", false),
					ratioRow("  of it private (anonymous) memory at its sampled peak", p.Anon/(1<<20),
						"the raw server's", ref.Anon/(1<<20), "%.1f MiB", "", false),
					ratioRow("  of it the binary's resident pages (shared, clean), same sample", p.File/(1<<20),
						"the raw server's", ref.File/(1<<20), "%.1f MiB", "", false),
					ratioRow("  the binary's code (its ELF .text section)", p.Text/(1<<20),
						"the raw server's", ref.Text/(1<<20), "%.1f MiB", "", false))
			}
		}
	}
	return rows
}

// rssRows give the bench process's memory after each stage.
func (r *Report) rssRows() []Row {
	var rows []Row
	for _, p := range r.RSS {
		rows = append(rows, Row{Figure: "bench process RSS after " + p.After + " (peak)", Value: fmt.Sprintf("%.0f MiB (%.0f MiB)", p.RSS/(1<<20), p.HWM/(1<<20))})
	}
	return rows
}

func latencyTarget(p LightPoint) string {
	ok := p.P50 <= 50*time.Millisecond && p.P99 <= 250*time.Millisecond
	return "≤ 50 / 250 ms " + mark(ok)
}

// ratioRow builds a row with the ratio value/ref; higher says whether a
// bigger ratio is better (for the target mark).
func ratioRow(fig string, v float64, refName string, ref float64, format, target string, higher bool) Row {
	row := Row{Figure: fig, Value: fmt.Sprintf(format, v), Reference: refName + ": " + fmt.Sprintf(format, ref)}
	if ref > 0 {
		ratio := v / ref
		row.Ratio = fmt.Sprintf("%.2f", ratio)
		if target != "" {
			lim, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimLeft(target, "≥≤ ")), 64)
			ok := ratio >= lim
			if !higher {
				ok = ratio <= lim
			}
			target += " " + mark(ok)
		}
	}
	row.Target = target
	return row
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms2(a, b time.Duration) string {
	return fmt.Sprintf("%s / %s ms", msf(a), msf(b))
}

func msf(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// env describes the machine and the run for the table's heading.
func (r *Report) env() string {
	mode := "full"
	if r.Quick {
		mode = "quick (figures too noisy to quote)"
	}
	aof := "off"
	if r.AOF {
		aof = "appendonly everysec"
	}
	return fmt.Sprintf("%s run, %s, %d CPUs (GOMAXPROCS %d), %s, redis %s (AOF %s), %s",
		mode, r.Started.UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOMAXPROCS(0),
		runtime.Version(), r.RedisVersion, aof, r.Finished.Sub(r.Started).Round(time.Second))
}

// WriteTable prints the table for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintln(w, "LeadRelay bench:", r.env())
	if r.Label != "" {
		fmt.Fprintln(w, "label:", r.Label)
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tLeadRelay\treference\tratio\ttarget")
	for _, row := range r.Rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Figure, row.Value, row.Reference, row.Ratio, row.Target)
	}
	return tw.Flush()
}

// Markdown is the run as a BENCHMARKS.md section.
func (r *Report) Markdown() string {
	var sb strings.Builder
	title := r.Started.UTC().Format("2006-01-02 15:04 UTC")
	if r.Label != "" {
		title += " — " + r.Label
	}
	fmt.Fprintf(&sb, "## %s\n\n%s\n\n", title, r.env())
	sb.WriteString("| figure | LeadRelay | reference | ratio | target |\n|---|---|---|---|---|\n")
	for _, row := range r.Rows() {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", row.Figure, row.Value, row.Reference, row.Ratio, row.Target)
	}
	return sb.String()
}

// benchmarksHeader starts a new BENCHMARKS.md.
const benchmarksHeader = `# Benchmarks

Rows written by ` + "`go run ./tools/bench`" + ` (see README, "Benchmarks"): every figure is measured with its
reference in the same run, on the same machine, a moment apart; the ratio is LeadRelay / reference.
Newest run first.

`

// AppendMarkdown adds the run to path, newest first, creating the file
// with its header when missing.
func (r *Report) AppendMarkdown(path string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	rest := strings.TrimPrefix(string(old), benchmarksHeader)
	return os.WriteFile(path, []byte(benchmarksHeader+r.Markdown()+"\n"+rest), 0o644)
}

// selfCPU is the CPU time (user and system) this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
