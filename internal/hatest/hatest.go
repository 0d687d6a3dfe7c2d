// Package hatest is the harness of LeadRelay's high-availability tests
// (internal/hatest/...): it builds the leadrelay binary (of this tree or of
// an earlier commit), runs intake and worker processes against a Redis
// topology from internal/redistest, plays the sites at a steady rate, and
// counts what reached the CRM simulator: lost and duplicated leads. The
// chaos suite (internal/chaos) and the real-CRM suite (internal/realcrm)
// run their processes through it too.
//
//	bin := hatest.Binary(t)
//	sim, crmURL := hatest.StartSim(t, 0)
//	env := hatest.Env(rds.URL(), crmURL)
//	in := hatest.Start(t, bin, "intake", env, "intake")
//	hatest.Start(t, bin, "worker1", env, "worker")
//	pub := &hatest.Publisher{URL: in.URL, Rate: 100}
//	pub.Run(ctx, 2000, nil)
//	res := hatest.WaitDelivered(t, sim, pub.Acked(), time.Minute)
//
// Every process is stopped by t.Cleanup, every wait is bounded, and no test
// asserts a duration: durations are reported in the summary line, which
// Summary also appends to $LEADRELAY_HA_SUMMARY for CI to print.
package hatest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"leadrelay/crmsim"
	"leadrelay/crmsim/crmsimtest"
)

// Keys of the test site and the simulated CRM account, and the operators'
// credentials of the ops listener.
const (
	CRMKey      = "ha-crm-key-0123456789"
	SiteKey     = "ha-site-key-0123456789"
	OpsUser     = "ops"
	OpsPassword = "ha-ops-password-0123"
)

// Short skips t under -short: these suites run real processes for a minute.
func Short(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("high-availability suite skipped in -short mode")
	}
}

// Summary logs line and appends it to the file named by
// $LEADRELAY_HA_SUMMARY: go test hides a passing package's output.
func Summary(t testing.TB, line string) {
	t.Helper()
	t.Log(line)
	if path := os.Getenv("LEADRELAY_HA_SUMMARY"); path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
}

// builds holds one build per package of this tree, made once per test
// process.
var builds sync.Map // package path -> *build

// build is one package's binary, built at most once.
type build struct {
	once sync.Once
	path string
	err  error
}

// Binary builds cmd/leadrelay of this tree once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	return binaryOf(t, "leadrelay/cmd/leadrelay", "leadrelay")
}

// SimBinary builds the stand-alone CRM simulator, tools/crmsim, of this
// tree once per test process; it takes the flags of crmsim.Run.
func SimBinary(t testing.TB) string {
	t.Helper()
	return binaryOf(t, "leadrelay/tools/crmsim", "crmsim")
}

// binaryOf builds pkg of this tree into a temporary file named name, once.
func binaryOf(t testing.TB, pkg, name string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "leadrelay-ha-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		b.err = goBuild("", pkg, b.path)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// goBuild builds pkg of the module in dir ("" = this one).
func goBuild(dir, pkg, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %q: %v\n%s", pkg, dir, err, b)
	}
	return nil
}

// Proc is one leadrelay process; its stdout and stderr go to a log file.
type Proc struct {
	// Name names the process in logs and failures.
	Name string
	bin  string
	args []string
	env  []string
	log  string
	t    testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	url  string
}

var listening = regexp.MustCompile(`listening on (http://[0-9.:]+)`)

// Start runs bin with args and env (plus PATH) and waits, at most 30s, until
// it prints the address it listens on. It is killed at cleanup.
func Start(t testing.TB, bin, name string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, bin: bin, args: args, env: env, log: filepath.Join(t.TempDir(), name+".log"), t: t}
	t.Cleanup(p.Kill)
	p.Restart()
	return p
}

// StartRelay starts the relay as production runs it: an intake process
// named "intake" and n worker processes named "worker1".."workerN", all of
// bin with env. Each is killed at cleanup.
func StartRelay(t testing.TB, bin string, env []string, n int) (intake *Proc, workers []*Proc) {
	t.Helper()
	intake = Start(t, bin, "intake", env, "intake")
	workers = make([]*Proc, n)
	for i := range workers {
		workers[i] = Start(t, bin, fmt.Sprintf("worker%d", i+1), env, "worker")
	}
	return intake, workers
}

// Restart starts the process again (after Kill or Terminate) with the same
// settings, and waits until it listens.
func (p *Proc) Restart() {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, p.env...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("%s: %v", p.Name, err)
	}
	done, urls := make(chan struct{}), make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && len(urls) == 0 {
				urls <- m[1]
			}
			p.appendLog(sc.Text())
		}
	}()
	go func() { <-copied; _ = cmd.Wait(); close(done) }()
	select {
	case u := <-urls:
		p.mu.Lock()
		p.cmd, p.done, p.url = cmd, done, u
		p.mu.Unlock()
	case <-done:
		p.t.Fatalf("%s exited before listening; log:\n%s", p.Name, p.Tail())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		p.t.Fatalf("%s did not listen within 30s; log:\n%s", p.Name, p.Tail())
	}
}

func (p *Proc) appendLog(line string) {
	if f, err := os.OpenFile(p.log, os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

var (
	opsBanner     = regexp.MustCompile(`ops UI: (http://[0-9.:]+)/`)
	metricsBanner = regexp.MustCompile(`metrics: (http://[0-9.:]+)/metrics`)
)

// OpsURL is the base URL of the process's operator routes (UI, dead
// letters), as its banner names it; URL when the banner names none.
func (p *Proc) OpsURL() string { return p.banner("ops UI: ", opsBanner) }

// MetricsURL is the base URL of the process's /metrics, as its banner names
// it; URL when the banner names none.
func (p *Proc) MetricsURL() string { return p.banner("metrics: ", metricsBanner) }

func (p *Proc) banner(label string, re *regexp.Regexp) string {
	for _, line := range p.Lines(label) {
		if m := re.FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	return p.URL()
}

// URL is the process's HTTP base URL.
func (p *Proc) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.url
}

// Kill sends SIGKILL and waits (at most 10s) until the process is gone.
// Safe to call on a stopped process.
func (p *Proc) Kill() { p.stop(syscall.SIGKILL, 10*time.Second) }

// Terminate sends SIGTERM and waits, at most d, for a graceful exit, and
// returns how long the exit took. Past d it kills the process and fails.
func (p *Proc) Terminate(d time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	if !p.stop(syscall.SIGTERM, d) {
		p.t.Errorf("%s did not exit within %s of SIGTERM; log:\n%s", p.Name, d, p.Tail())
		p.Kill()
	}
	return time.Since(start)
}

func (p *Proc) stop(sig syscall.Signal, d time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		return true
	case <-time.After(d):
		if sig == syscall.SIGKILL {
			p.t.Errorf("%s did not exit after SIGKILL", p.Name)
		}
		return false
	}
}

// Signal sends sig to the running process, such as SIGHUP, which makes
// an intake reload its sites file.
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s is not running", p.Name)
	}
	return cmd.Process.Signal(sig)
}

// Lines returns the log lines that contain every one of subs.
func (p *Proc) Lines(subs ...string) []string {
	b, _ := os.ReadFile(p.log)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// Count is how many log lines contain every one of subs.
func (p *Proc) Count(subs ...string) int { return len(p.Lines(subs...)) }

// LogPath is the file the process's output goes to, across restarts. It
// is in the test's temporary directory: copy it to keep it.
func (p *Proc) LogPath() string { return p.log }

// Tail is the end of the process's log, for failure messages.
func (p *Proc) Tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// WaitFor calls cond every interval until it holds or d has passed, and
// reports whether it held.
func WaitFor(d, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// StartSim runs the CRM simulator in-process on a loopback port, answering
// every API call after latency.
func StartSim(t testing.TB, latency time.Duration) (*crmsim.Sim, string) {
	t.Helper()
	return crmsimtest.Start(t, crmsim.Config{APIKey: CRMKey, Seed: 1, Faults: crmsim.Faults{Latency: crmsim.Duration(latency)}})
}

// DataKeys is the relays' data keyring in these tests (LEADRELAY_DATA_KEYS).
const DataKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// SimLead is a lead as a simulator lists it on GET /_sim/leads.
type SimLead struct {
	ID    int64     `json:"id"`
	Email string    `json:"email"`
	Datum time.Time `json:"datum"`
}

// SimLeads lists the leads of a simulator at base, one in another process
// (GET /_sim/leads); a failed request or an answer not JSON fails t.
func SimLeads(t testing.TB, base string) []SimLead {
	t.Helper()
	resp, err := http.Get(base + "/_sim/leads")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []SimLead
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("/_sim/leads: %v: %.200s", err, b)
	}
	return out
}

// SetSimFaults sets the faults of a simulator at base, one in another
// process (POST /_sim/faults), to faults as JSON: the simulator's answer
// when it is not 200, or the request's error, within 2s.
func SetSimFaults(base string, faults any) error {
	b, err := json.Marshal(faults)
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Post(base+"/_sim/faults", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("set faults %s: %d %s", b, resp.StatusCode, body)
	}
	return nil
}

// Env is the environment of a relay on redisURL delivering to the simulator
// at crmURL (v2), with limits off and retries short enough for tests; extra
// entries ("NAME=value") override.
func Env(redisURL, crmURL string, extra ...string) []string {
	env := []string{
		"LEADRELAY_REDIS_URL=" + redisURL,
		"LEADRELAY_DATA_KEYS=" + DataKeys,
		"LEADRELAY_CRM_URL=" + crmURL,
		"LEADRELAY_CRM_API=v2",
		"LEADRELAY_CRM_LOGIN=admin@example.com",
		"LEADRELAY_CRM_APIKEY=" + CRMKey,
		"LEADRELAY_SITES=shop=" + SiteKey,
		"LEADRELAY_UI_USER=" + OpsUser,
		"LEADRELAY_UI_PASSWORD=" + OpsPassword,
		"LEADRELAY_HTTP_ADDR=127.0.0.1:0",
		"LEADRELAY_CRM_TIMEOUT=2s",
		"LEADRELAY_RECONCILE_AFTER=3s",
		"LEADRELAY_RETRY_INITIAL=200ms",
		"LEADRELAY_RETRY_MAX_DELAY=2s",
		"LEADRELAY_BREAKER_COOLDOWN=1s",
		"LEADRELAY_CRM_RATE_LIMIT=0",
		"LEADRELAY_CRM_MAX_CONCURRENT=0",
		"LEADRELAY_SITE_RATE_LIMIT=0",
		"LEADRELAY_GLOBAL_RATE_LIMIT=0",
		"LEADRELAY_SHUTDOWN_TIMEOUT=3s",
		"LEADRELAY_LOG_LEVEL=info",
	}
	return append(env, extra...)
}

// Acked is a lead intake acknowledged.
type Acked struct {
	// Email marks the lead in the CRM.
	Email string
	// ID is LeadRelay's lead id.
	ID string
	// At is when intake acknowledged it.
	At time.Time
}

// Publisher plays the sites: it posts leads to the JSON API at a steady rate
// and, like a careful site, sends a lead again with the same key when intake
// answers 503 or cannot be reached, until it is acknowledged (bounded).
type Publisher struct {
	// URL gives intake's base URL (it may change across restarts).
	URL func() string
	// Rate is leads started per second.
	Rate float64
	// Prefix makes the leads' e-mails unique to the run; "" = "ha".
	Prefix string

	mu        sync.Mutex
	acked     []Acked
	failed    []string
	first503  time.Time
	last503   time.Time
	n503      int
	nRefused  int
	otherCode map[int]int
}

// Run publishes n leads, starting one every 1/Rate seconds, and returns when
// each is acknowledged or given up (after 90s of retries). hook, if not nil,
// runs in its own goroutine when lead i is started.
func (p *Publisher) Run(ctx context.Context, n int, hook func(i int)) {
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / p.Rate))
	defer tick.Stop()
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < n; i++ {
		if hook != nil {
			go hook(i)
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.publish(ctx, client, i) }()
		select {
		case <-tick.C:
		case <-ctx.Done():
			wg.Wait()
			return
		}
	}
	wg.Wait()
}

// Email is the marker e-mail of lead i.
func (p *Publisher) Email(i int) string {
	prefix := p.Prefix
	if prefix == "" {
		prefix = "ha"
	}
	return fmt.Sprintf("%s-%05d@example.com", prefix, i)
}

// PostLead posts one lead marked by email to intake's JSON API, with email
// as its Idempotency-Key, and returns the status and the lead id.
func PostLead(ctx context.Context, client *http.Client, base, email, description string) (int, string, error) {
	return Post(ctx, client, base, SiteKey, email, map[string]string{"title": "HA " + email, "email": email, "description": description})
}

// Post posts one lead of the given fields to intake's JSON API at base, as
// the site whose key is siteKey, with idemKey as its Idempotency-Key, and
// returns the status and the lead id intake answered.
func Post(ctx context.Context, client *http.Client, base, siteKey, idemKey string, fields map[string]string) (int, string, error) {
	body, _ := json.Marshal(fields)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/leads", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+siteKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var a struct{ ID string }
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a)
	return resp.StatusCode, a.ID, nil
}

func (p *Publisher) publish(ctx context.Context, client *http.Client, i int) {
	email := p.Email(i)
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 0; time.Now().Before(deadline) && ctx.Err() == nil; attempt++ {
		code, id, err := PostLead(ctx, client, p.URL(), email, "ha lead")
		if err != nil {
			p.mu.Lock()
			p.nRefused++
			p.mu.Unlock()
		} else {
			now := time.Now()
			switch code {
			case http.StatusAccepted, http.StatusOK:
				p.mu.Lock()
				p.acked = append(p.acked, Acked{Email: email, ID: id, At: now})
				p.mu.Unlock()
				return
			case http.StatusServiceUnavailable:
				p.mu.Lock()
				if p.first503.IsZero() {
					p.first503 = now
				}
				p.last503 = now
				p.n503++
				p.mu.Unlock()
			default:
				p.mu.Lock()
				if p.otherCode == nil {
					p.otherCode = map[int]int{}
				}
				p.otherCode[code]++
				p.mu.Unlock()
				return
			}
		}
		time.Sleep(min(time.Duration(50*(attempt+1))*time.Millisecond, time.Second))
	}
	p.mu.Lock()
	p.failed = append(p.failed, email)
	p.mu.Unlock()
}

// Each calls f for every i from 0 to n-1, from workers goroutines at once,
// and returns when every call has: sites sending as fast as intake takes
// their leads.
func Each(n, workers int, f func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				f(i)
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// Acked returns the leads acknowledged so far.
func (p *Publisher) Acked() []Acked {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Acked(nil), p.acked...)
}

// Unavailable reports the 503 answers: how many, and the span from the first
// to the last; refused counts requests that reached no intake.
func (p *Publisher) Unavailable() (n int, span time.Duration, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n503, p.last503.Sub(p.first503), p.nRefused
}

// Problems describes leads never acknowledged and answers other than 2xx or 503.
func (p *Publisher) Problems() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failed) == 0 && len(p.otherCode) == 0 {
		return ""
	}
	return fmt.Sprintf("%d leads never acknowledged (first: %v), other answers %v", len(p.failed), p.failed[:min(3, len(p.failed))], p.otherCode)
}

// Result is what reached the CRM of the acknowledged leads.
type Result struct {
	// Acked is the count of acknowledged leads.
	Acked int
	// Delivered is how many of them are in the CRM.
	Delivered int
	// Lost are acknowledged leads not in the CRM.
	Lost []Acked
	// Duplicated are acknowledged leads in the CRM more than once.
	Duplicated []Acked
	// Extra counts CRM leads no acknowledged lead accounts for.
	Extra int
	// MaxWait is the longest a delivered lead waited from its
	// acknowledgement to its first arrival in the CRM.
	MaxWait time.Duration
}

// String is the result as summary fields.
func (r Result) String() string {
	return fmt.Sprintf("acked=%d delivered=%d lost=%d duplicated=%d max_wait=%s",
		r.Acked, r.Delivered, len(r.Lost), len(r.Duplicated), r.MaxWait.Round(time.Millisecond))
}

// Tally counts the acknowledged leads in the CRM by their e-mail.
func Tally(sim *crmsim.Sim, acked []Acked) Result {
	count, first := map[string]int{}, map[string]time.Time{}
	for _, l := range sim.Leads() {
		if count[l.Email]++; count[l.Email] == 1 || l.Datum.Before(first[l.Email]) {
			first[l.Email] = l.Datum
		}
	}
	r := Result{Acked: len(acked)}
	for _, a := range acked {
		switch n := count[a.Email]; {
		case n == 0:
			r.Lost = append(r.Lost, a)
		case n > 1:
			r.Duplicated = append(r.Duplicated, a)
			r.Delivered++
		default:
			r.Delivered++
		}
		if t, ok := first[a.Email]; ok {
			r.MaxWait = max(r.MaxWait, t.Sub(a.At))
		}
		delete(count, a.Email)
	}
	for _, n := range count {
		r.Extra += n
	}
	return r
}

// WaitDelivered waits, at most d, until every acknowledged lead is in the
// CRM, then a little longer for a stray second add, and tallies.
func WaitDelivered(t testing.TB, sim *crmsim.Sim, acked []Acked, d time.Duration) Result {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := Tally(sim, acked)
		if len(r.Lost) == 0 || time.Now().After(deadline) {
			time.Sleep(500 * time.Millisecond)
			return Tally(sim, acked)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Gaps samples how many leads the CRM holds, every 20ms until stop is
// closed, and returns the longest time the count did not grow while leads
// were still to come (want not yet reached).
func Gaps(sim *crmsim.Sim, want int, stop <-chan struct{}) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		var longest time.Duration
		last, lastN := time.Now(), 0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- longest
				return
			case now := <-tick.C:
				n := len(sim.Leads())
				if n != lastN || lastN == 0 || n >= want {
					last, lastN = now, n
					continue
				}
				longest = max(longest, now.Sub(last))
			}
		}
	}()
	return out
}

// Explain lists up to 5 leads with what the workers logged about them.
func Explain(leads []Acked, procs ...*Proc) string {
	var b strings.Builder
	for _, l := range leads[:min(5, len(leads))] {
		fmt.Fprintf(&b, "\n  %s (%s, acked %s)", l.Email, l.ID, l.At.Format("15:04:05.000"))
		for _, p := range procs {
			for _, line := range p.Lines(l.ID) {
				fmt.Fprintf(&b, "\n    %s: %s", p.Name, line)
			}
		}
	}
	return b.String()
}

// PreviousCommit is the commit whose binary a mixed-version test runs next
// to this tree's: $LEADRELAY_PREV_COMMIT, else the parent of the first
// commit that touched internal/rdb (the store that changed the keys). It
// skips the test, saying why, when there is no such commit or no git history.
func PreviousCommit(t testing.TB) string {
	t.Helper()
	if c := os.Getenv("LEADRELAY_PREV_COMMIT"); c != "" {
		return gitOut(t, "rev-parse", "--verify", c+"^{commit}")
	}
	first := strings.Fields(gitOut(t, "log", "--reverse", "--format=%H", "--", ":(top)internal/rdb"))
	if len(first) == 0 {
		t.Skip("no commit touches internal/rdb yet, so no earlier version with other keys to mix with; set LEADRELAY_PREV_COMMIT to pick one")
	}
	return gitOut(t, "rev-parse", "--verify", first[0]+"^")
}

// gitOut runs git in the repository of this tree and returns its trimmed
// output; it skips the test when git or the repository is missing.
func gitOut(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Skipf("no git history to build an earlier version from (git %s: %v %s)", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// BinaryAt builds cmd/leadrelay as it was at commit: git archive into a
// temporary directory, then go build there.
func BinaryAt(t testing.TB, commit string) string {
	t.Helper()
	dir, top := t.TempDir(), gitOut(t, "rev-parse", "--show-toplevel")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", commit)
	archive.Dir = top // git archive refuses an untracked working directory
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	// One buffer each: each process's stderr is copied by a goroutine of
	// its own, and a shared buffer is a data race.
	var archiveErr, untarErr bytes.Buffer
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v %s", commit, err, archiveErr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("untar %s: %v %s", commit, err, untarErr.String())
	}
	out := filepath.Join(dir, "leadrelay-"+commit[:min(12, len(commit))])
	if err := goBuild(dir, "leadrelay/cmd/leadrelay", out); err != nil {
		t.Fatal(err)
	}
	return out
}
