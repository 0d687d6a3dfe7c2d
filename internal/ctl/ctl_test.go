package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

const (
	crmLogin = "admin@example.com"
	crmKey   = "ctl-test-secret-key-0123456789"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// env is a real Redis, a CRM simulator and a config pointing at both.
type env struct {
	rdb   *redis.Client
	cfg   config.Config
	store *deadletter.Store
	crm   *crmclient.Client
	cli   *asynq.Client
	insp  *asynq.Inspector
}

// testDataKeys is ctl's data keyring in these tests.
const testDataKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func newEnv(t *testing.T, extra map[string]string) *env {
	t.Helper()
	srv := redistest.Start(t)
	sim, err := crmsim.New(crmsim.Config{APIKey: crmKey})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	vars := map[string]string{
		"LEADRELAY_REDIS_URL":  srv.URL(),
		"LEADRELAY_DATA_KEYS":  testDataKeys,
		"LEADRELAY_CRM_URL":    hs.URL,
		"LEADRELAY_CRM_LOGIN":  crmLogin,
		"LEADRELAY_CRM_APIKEY": crmKey,
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	crm, err := crmclient.New(hs.URL, crmLogin, crmKey)
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client()
	return &env{rdb: rdb, cfg: cfg, store: deadletter.New(rdb), crm: crm,
		cli: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb)}
}

// run runs ctl with stdin and checks that the CRM key never shows.
func (e *env) run(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := RunWith(t.Context(), args, e.cfg, &out, &errb,
		Options{Stdin: strings.NewReader(stdin), Now: func() time.Time { return now }})
	if strings.Contains(out.String()+errb.String(), crmKey) || (err != nil && strings.Contains(err.Error(), crmKey)) {
		t.Fatalf("ctl %v printed the CRM key", args)
	}
	return out.String(), errb.String(), err
}

// payload returns a lead's payload.
func payload(site, key string) lead.Payload {
	return lead.NewPayload(site, key, lead.Lead{Title: "Ann " + key, Email: key + "@example.com"}, now.Add(-2*time.Hour))
}

// putDead stores a dead lead dying at now-ago.
func (e *env) putDead(t *testing.T, site, key string, ago time.Duration) string {
	t.Helper()
	p := payload(site, key)
	task, err := lead.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(-ago)
	if err := e.store.Put(t.Context(), deadletter.Record{
		LeadID: p.ID, Site: site, Queue: lead.DefaultQueue, Attempts: 3,
		Reason: delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "CRM rejected " + key},
		DeadAt: at, ReceivedAt: p.ReceivedAt, Payload: task.Payload(),
		Errors: []deadletter.AttemptError{{At: at, Attempt: 3, Class: "dead", Reason: delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: key}}},
	}); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// putArchived makes a lead dead as a worker does: its task in asynq's
// archive, its record in the store (putDead's).
func (e *env) putArchived(t *testing.T, site, key string) lead.Payload {
	t.Helper()
	p := payload(site, key)
	e.enqueue(t, p)
	if err := e.insp.ArchiveTask(lead.DefaultQueue, p.ID); err != nil {
		t.Fatal(err)
	}
	e.putDead(t, site, key, time.Minute)
	return p
}

// enqueue puts a lead task on the queue with extra options.
func (e *env) enqueue(t *testing.T, p lead.Payload, opts ...asynq.Option) {
	t.Helper()
	task, err := lead.NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.Enqueue(task, append([]asynq.Option{asynq.Queue(lead.DefaultQueue)}, opts...)...); err != nil {
		t.Fatal(err)
	}
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

// writeFile writes text to a file called name in a directory of the test's
// own, and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	down, err := config.Load(func(k string) string {
		if k == "LEADRELAY_REDIS_URL" {
			return "redis://127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "/0"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  *config.Config // nil = e.cfg
		args []string
		code int
	}{
		{"no command", nil, nil, ExitUsage},
		{"unknown command", nil, []string{"frobnicate"}, ExitUsage},
		{"dead without subcommand", nil, []string{"dead"}, ExitUsage},
		{"unknown dead subcommand", nil, []string{"dead", "bury"}, ExitUsage},
		{"bad flag", nil, []string{"dead", "list", "--bogus"}, ExitUsage},
		{"bad since", nil, []string{"dead", "list", "--since", "yesterday"}, ExitUsage},
		{"show without id", nil, []string{"dead", "show"}, ExitUsage},
		{"requeue nothing", nil, []string{"dead", "requeue"}, ExitUsage},
		{"requeue ids and all", nil, []string{"dead", "requeue", "ld_x", "--all"}, ExitUsage},
		{"crm info not a number", nil, []string{"crm", "info", "abc"}, ExitUsage},
		{"crm list page and all", nil, []string{"crm", "list", "--page", "1", "--all"}, ExitUsage},
		{"crm list since alone", nil, []string{"crm", "list", "--since", "2026-03-01"}, ExitUsage},
		{"help", nil, []string{"help"}, ExitOK},
		{"-h", nil, []string{"dead", "list", "-h"}, ExitOK},
		{"dead show unknown", nil, []string{"dead", "show", "ld_none"}, ExitNotFound},
		{"lead status unknown", nil, []string{"lead", "status", "ld_none"}, ExitNotFound},
		{"requeue unknown", nil, []string{"dead", "requeue", "ld_none"}, ExitNotFound},
		{"crm info unknown", nil, []string{"crm", "info", "999999"}, ExitNotFound},
		{"redis down", &down, []string{"queues"}, ExitFailure},
		{"redis down json", &down, []string{"--json", "dead", "list"}, ExitFailure},
		{"no crm configured", &down, []string{"crm", "stat"}, ExitFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := *e
			if tc.cfg != nil {
				env.cfg = *tc.cfg
			}
			_, stderr, err := env.run(t, "", tc.args...)
			if got := ExitCode(err); got != tc.code {
				t.Errorf("ctl %v: exit %d (%v), want %d", tc.args, got, err, tc.code)
			}
			if tc.code == ExitUsage && !strings.Contains(stderr, "Usage: leadrelay ctl") {
				t.Errorf("usage error without usage text on stderr: %q", stderr)
			}
		})
	}
}

// TestUsageListsEveryCommand: the dispatch table and Usage name the same
// commands, so a command added to one is not missing from the other.
func TestUsageListsEveryCommand(t *testing.T) {
	t.Parallel()
	for name := range commands {
		if !strings.Contains(Usage, "\n  "+name+" ") && !strings.Contains(Usage, "\n  "+name+"\n") {
			t.Errorf("Usage does not list %q", name)
		}
	}
	for _, line := range strings.Split(Usage, "\n") {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
			continue
		}
		words := strings.Fields(line)
		name := words[0]
		if len(words) > 1 && isGroup(words[0]) {
			name += " " + words[1]
		}
		if _, ok := commands[name]; !ok {
			t.Errorf("Usage lists %q, which no command runs", name)
		}
	}
}

// TestJSONKeysSnakeCase: every --json answer of ctl names its members in
// snake_case, the CRM reads included (issue 19.5: crm stat said Login and
// Open).
func TestJSONKeysSnakeCase(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	crmID, err := e.crm.Add(t.Context(), crmclient.Lead{Lead: lead.Lead{Title: "Ann", Email: "snake@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	dead := e.putDead(t, "shop", "snake", 0)
	tests := [][]string{
		{"crm", "stat"},
		{"crm", "info", fmt.Sprint(crmID)},
		{"crm", "list"},
		{"queues"},
		{"dead", "list"},
		{"dead", "show", dead},
		{"lead", "status", dead},
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, _, err := e.run(t, "", append([]string{"--json"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, k := range jsonKeys(v, nil) {
				if !snake.MatchString(k) {
					t.Errorf("member %q is not snake_case:\n%s", k, out)
				}
			}
		})
	}
}

// jsonKeys appends the member names of every object in v.
func jsonKeys(v any, keys []string) []string {
	switch v := v.(type) {
	case map[string]any:
		for k, m := range v {
			keys = jsonKeys(m, append(keys, k))
		}
	case []any:
		for _, m := range v {
			keys = jsonKeys(m, keys)
		}
	}
	return keys
}

// TestQueuesFresh: on a Redis where no lead was ever queued, ctl queues
// prints the configured queue with zeros, not an error (issue 8).
func TestQueuesFresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	out, _, err := e.run(t, "", "queues")
	if err != nil {
		t.Fatalf("ctl queues on a fresh Redis: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "leads") || strings.Contains(out, "NOT_FOUND") {
		t.Fatalf("table:\n%s", out)
	}
	for _, f := range strings.Fields(lines[1])[1:] {
		if f != "0" && f != "-" && f != "no" && f != "0s" {
			t.Errorf("fresh queue shows %q in:\n%s", f, out)
		}
	}
}

func TestQueues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.enqueue(t, payload("shop", "p1"))
	e.enqueue(t, payload("shop", "p2"))
	e.enqueue(t, payload("shop", "s1"), asynq.ProcessIn(time.Hour))
	e.putArchived(t, "shop", "a1")
	e.putDead(t, "shop", "trimmed", time.Minute)
	// Seven leads delivered today, as the worker counts them, and two
	// keyless repeats, as intake counts them.
	if err := e.rdb.Set(t.Context(), rdb.DeliveredCountKey(now.UTC().Format("2006-01-02")), 7, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := rdb.New(e.rdb).CountKeylessRepeat(t.Context(), "shop", "ld_x", now, time.Hour); err != nil {
			t.Fatal(err)
		}
	}

	out, _, err := e.run(t, "", "queues")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "QUEUE") || !strings.Contains(lines[0], "DEAD") {
		t.Fatalf("table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "leads" || f[1] != "2" || f[3] != "1" || f[4] != "2" || f[5] != "7" {
		t.Errorf("row %q: want leads, pending 2, waiting 1, dead 2, delivered today 7", lines[1])
	}
	// Narrow enough for a terminal, and it says how DEAD and the archive differ.
	for _, l := range lines {
		if len([]rune(l)) > 120 {
			t.Errorf("line wider than 120 columns: %q", l)
		}
	}
	if !strings.Contains(out, "asynq's archive (the UI's Archived tab) holds 1 of them too") || !strings.Contains(out, "nothing trims") {
		t.Errorf("no legend for DEAD and the archive:\n%s", out)
	}
	if !strings.Contains(out, "keyless repeats today: shop 2 (") {
		t.Errorf("no line for the keyless repeats:\n%s", out)
	}

	out, _, err = e.run(t, "", "queues", "--json")
	if err != nil {
		t.Fatal(err)
	}
	rows := decodeJSON[[]queueRow](t, out)
	want := queueRow{Queue: "leads", Pending: 2, Scheduled: 1, Archived: 1, Dead: 2, Delivered: 7, OldestSec: rows[0].OldestSec,
		KeylessRepeats: map[string]int64{"shop": 2}}
	if len(rows) != 1 || !reflect.DeepEqual(rows[0], want) {
		t.Errorf("json rows = %+v", rows)
	}
}

// TestQueuesSite: --site counts one site's leads in each state.
func TestQueuesSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.enqueue(t, payload("shop", "p1"))
	e.enqueue(t, payload("shop", "p2"))
	e.enqueue(t, payload("blog", "p3"))
	e.enqueue(t, payload("shop", "s1"), asynq.ProcessIn(time.Hour))
	e.putDead(t, "shop", "d1", time.Minute)
	e.putDead(t, "blog", "d2", time.Minute)
	out, _, err := e.run(t, "", "--json", "queues", "--site", "shop")
	if err != nil {
		t.Fatal(err)
	}
	r := decodeJSON[siteRow](t, out)
	if r != (siteRow{Site: "shop", Queue: "leads", Pending: 2, Waiting: 1, Dead: 1}) {
		t.Errorf("shop = %+v", r)
	}
	out, _, err = e.run(t, "", "queues", "--site", "blog")
	if err != nil || !strings.Contains(out, "blog") || !strings.HasPrefix(out, "SITE") {
		t.Errorf("table: %v\n%s", err, out)
	}
}

func TestDeadListAndShow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	old := e.putDead(t, "shop", "old", 3*24*time.Hour)
	mid := e.putDead(t, "blog", "mid", 2*time.Hour)
	recent := e.putDead(t, "shop", "recent", 5*time.Minute)

	tests := []struct {
		name  string
		args  []string
		want  []string // lead ids in order
		total int
	}{
		{"all", nil, []string{recent, mid, old}, 3},
		{"site", []string{"--site", "shop"}, []string{recent, old}, 2},
		{"since duration", []string{"--since", "1d"}, []string{recent, mid}, 2},
		{"since date", []string{"--since", "2026-03-10"}, []string{recent, mid}, 2},
		{"limit", []string{"--limit", "1"}, []string{recent}, 3},
		{"offset", []string{"--limit", "1", "--offset", "1"}, []string{mid}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := e.run(t, "", append([]string{"dead", "list"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if lines[0] != strings.Join(strings.Fields("LEAD ID  SITE  REASON  ATTEMPTS  AGE"), "") &&
				!strings.HasPrefix(lines[0], "LEAD ID") {
				t.Fatalf("header %q", lines[0])
			}
			var got []string
			for _, l := range lines[1 : len(lines)-1] {
				got = append(got, strings.Fields(l)[0])
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("table ids %v, want %v\n%s", got, tc.want, out)
			}
			if footer := lines[len(lines)-1]; footer != fmt.Sprintf("%d of %d dead leads", len(tc.want), tc.total) {
				t.Errorf("footer %q", footer)
			}
			if strings.Contains(out, "@example.com") || strings.Contains(out, "Ann ") {
				t.Errorf("dead list shows personal data:\n%s", out)
			}

			out, _, err = e.run(t, "", append([]string{"dead", "list", "--json"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			v := decodeJSON[struct {
				Total int        `json:"total"`
				Items []deadItem `json:"leads"`
			}](t, out)
			got = got[:0]
			for _, it := range v.Items {
				got = append(got, it.LeadID)
			}
			if v.Total != tc.total || strings.Join(got, ",") != strings.Join(tc.want, ",") || strings.Contains(out, "@example.com") {
				t.Errorf("json: %s", out)
			}
		})
	}
	out, _, err := e.run(t, "", "dead", "list")
	if err != nil || !strings.Contains(out, "3d0h") || !strings.Contains(out, "CRM rejected recent") {
		t.Errorf("ages/reasons missing (%v):\n%s", err, out)
	}

	out, _, err = e.run(t, "", "dead", "show", recent)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{recent, "shop", "CRM rejected recent", "recent@example.com", "Ann recent", "Error history", "(CRM code 1): recent", "crm_rejected", "5m0s ago"} {
		if !strings.Contains(out, want) {
			t.Errorf("dead show lacks %q:\n%s", want, out)
		}
	}
	out, _, err = e.run(t, "", "--json", "dead", "show", recent)
	if err != nil {
		t.Fatal(err)
	}
	rec := decodeJSON[deadletter.Record](t, out)
	p, err := lead.ParsePayload(rec.Payload)
	if rec.LeadID != recent || err != nil || p.Lead.Email != "recent@example.com" || len(rec.Errors) != 1 {
		t.Errorf("dead show --json = %+v (%v)", rec, err)
	}
}

// TestDeadReason: lists and dead show render the stored reason in the
// operators' words, with the CRM's code and text; dead show names its
// code too.
func TestDeadReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	p := payload("shop", "raw")
	r := delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}
	if err := e.store.Put(t.Context(), deadletter.Record{LeadID: p.ID, Site: "shop", Reason: r, Attempts: 1, DeadAt: now}); err != nil {
		t.Fatal(err)
	}
	out, _, err := e.run(t, "", "dead", "list")
	if err != nil || !strings.Contains(out, "the CRM rejected the lead (CRM code 1)") {
		t.Errorf("dead list: %v\n%s", err, out)
	}
	out, _, err = e.run(t, "", "dead", "show", p.ID)
	if err != nil || !strings.Contains(out, r.Text(delivery.Operators)) || !strings.Contains(out, "crm_rejected") {
		t.Errorf("dead show: %v\n%s", err, out)
	}
	out, _, err = e.run(t, "", "--json", "dead", "list")
	if err != nil || !strings.Contains(out, `"reason_code": "crm_rejected"`) {
		t.Errorf("dead list --json: %v\n%s", err, out)
	}
}

func TestDeadRequeue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var shop []string
	for i := range 25 {
		shop = append(shop, e.putDead(t, "shop", fmt.Sprint("s", i), time.Duration(i+1)*time.Minute))
	}
	blog := e.putDead(t, "blog", "b", time.Minute)

	out, stderr, err := e.run(t, "", "dead", "requeue", "--all", "--site", "shop", "--progress", "10")
	if err != nil {
		t.Fatal(err)
	}
	if want := "requeue: 10/25\nrequeue: 20/25\nrequeue: 25/25\n"; stderr != want {
		t.Errorf("progress on stderr = %q, want %q", stderr, want)
	}
	if !strings.HasPrefix(out, "requeued 25 (0 archived tasks run again, 25 enqueued afresh); skipped 0, not found 0, failed 0") {
		t.Errorf("summary: %q", out)
	}
	info, err := e.insp.GetQueueInfo(lead.DefaultQueue)
	if err != nil || info.Pending != 25 {
		t.Fatalf("queue after requeue: %+v %v", info, err)
	}
	if n, _ := e.store.Count(t.Context()); n != 1 {
		t.Errorf("store holds %d, want only the blog lead", n)
	}

	// Requeueing a lead whose task is pending skips it; unknown ids are exit 3.
	e.putDead(t, "shop", "s0", time.Minute)
	out, _, err = e.run(t, "", "--json", "dead", "requeue", shop[0], blog, "ld_unknown")
	if ExitCode(err) != ExitNotFound {
		t.Errorf("exit %d (%v), want 3", ExitCode(err), err)
	}
	res := decodeJSON[deadletter.RequeueResult](t, out)
	if len(res.Enqueued) != 1 || res.Enqueued[0] != blog || len(res.Skipped) != 1 || res.Skipped[0].State != "pending" ||
		len(res.NotFound) != 1 {
		t.Errorf("json result: %s", out)
	}
}

func TestDeadPurge(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, nil)
	a := e.putArchived(t, "shop", "a")
	e.putDead(t, "shop", "b", time.Minute)
	e.putDead(t, "blog", "c", time.Minute)

	tests := []struct {
		name      string
		stdin     string
		args      []string
		wantErr   error
		wantCount int // left in the store
	}{
		{"answer no", "no\n", []string{"--site", "shop"}, ErrAborted, 3},
		{"no answer", "", nil, ErrAborted, 3},
		{"answer yes", "yes\n", []string{"--site", "shop"}, nil, 1},
		{"--yes", "", []string{"--yes"}, nil, 0},
		{"nothing left", "", nil, nil, 0},
	}
	for _, tc := range tests { // in order: each step sees the one before
		out, stderr, err := e.run(t, tc.stdin, append([]string{"dead", "purge"}, tc.args...)...)
		if !errors.Is(err, tc.wantErr) || (err != nil && ExitCode(err) != ExitFailure) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
		}
		if n, _ := e.store.Count(ctx); n != tc.wantCount {
			t.Errorf("%s: store holds %d, want %d", tc.name, n, tc.wantCount)
		}
		asked := strings.Contains(stderr, "Type yes to continue")
		if wantAsk := tc.name != "--yes" && tc.name != "nothing left"; asked != wantAsk {
			t.Errorf("%s: asked = %v (stderr %q)", tc.name, asked, stderr)
		}
		if tc.name == "answer yes" && out != "purged 2 dead leads (1 archived tasks)\n" {
			t.Errorf("%s: out %q", tc.name, out)
		}
	}
	if _, err := e.insp.GetTaskInfo(lead.DefaultQueue, a.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("archived task survived purge: %v", err)
	}
}

func TestLeadStatus(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, nil)

	queued := payload("shop", "queued")
	e.enqueue(t, queued)
	archived := e.putArchived(t, "shop", "archived")
	trimmed := e.putDead(t, "shop", "trimmed", time.Minute)
	// Two keyless repeats of the queued lead, as intake counts them.
	for range 2 {
		if err := rdb.New(e.rdb).CountKeylessRepeat(ctx, "shop", queued.ID, now, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	expired := payload("shop", "expired")
	if err := e.rdb.Set(ctx, "leadrelay:delivered:"+expired.ID, `{"crm_id":77,"at":"2026-03-10T11:00:00Z"}`, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}

	// A real asynq server makes the completed (with result) and retry states.
	done, retry := payload("shop", "done"), payload("shop", "retry")
	srv := asynq.NewServerFromRedisClient(e.rdb, asynq.Config{
		Concurrency: 2, Queues: map[string]int{"other": 1},
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:         zap.NewNop().Sugar(), LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		p, _ := lead.ParsePayload(task.Payload())
		if p.ID == retry.ID {
			return errors.New("CRM unreachable")
		}
		_, err := task.ResultWriter().Write([]byte(`{"crm_id":42,"delivered_at":"2026-03-10T11:30:00Z"}`))
		return err
	})); err != nil {
		t.Fatal(err)
	}
	e.cfg.Queue.Name = "other"
	for _, p := range []lead.Payload{done, retry} {
		task, _ := lead.NewTask(p)
		if _, err := e.cli.Enqueue(task, asynq.Queue("other"), asynq.Retention(time.Hour), asynq.MaxRetry(5)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := e.insp.GetQueueInfo("other")
		if err == nil && info.Completed == 1 && info.Retry == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not settle: %+v %v", info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Shutdown()

	tests := []struct {
		name, queue, id string
		state           delivery.State
		crmID           int64
		text            []string // in the human output
	}{
		{"queued", "leads", queued.ID, delivery.Queued, 0, []string{"queued", "queued@example.com", "Keyless repeats  2 (sent again"}},
		{"dead archived", "leads", archived.ID, delivery.Dead, 0, []string{"dead: ", "CRM rejected archived", "asynq task"}},
		{"dead trimmed", "leads", trimmed, delivery.Dead, 0, []string{"dead: ", "CRM rejected trimmed", "dead-letter store"}},
		{"delivered marker", "leads", expired.ID, delivery.Delivered, 77, []string{"delivered (CRM id 77)", "delivered marker"}},
		{"delivered result", "other", done.ID, delivery.Delivered, 42, []string{"delivered (CRM id 42)"}},
		{"retrying", "other", retry.ID, delivery.Retrying, 0, []string{"retrying", "CRM unreachable", "Next attempt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := *e
			env.cfg.Queue.Name = tc.queue
			out, _, err := env.run(t, "", "lead", "status", tc.id)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.text {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			out, _, err = env.run(t, "", "lead", "status", "--json", tc.id)
			if err != nil {
				t.Fatal(err)
			}
			st := decodeJSON[leadStatus](t, out)
			if st.ID != tc.id || st.State != tc.state || st.CRMID != tc.crmID {
				t.Errorf("json = %s", out)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(hs.Close)
	cfg, err := config.Load(func(k string) string {
		if k == "LEADRELAY_HTTP_ADDR" {
			return strings.TrimPrefix(hs.URL, "http://")
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "/healthz"
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"default url", nil, ExitOK},
		{"ok", []string{"--url", hs.URL + "/healthz"}, ExitOK},
		{"503", []string{"--url", hs.URL + "/readyz"}, ExitFailure},
		{"refused", []string{"--url", closed}, ExitFailure},
		{"bad url", []string{"--url", "::"}, ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			err := RunWith(t.Context(), append([]string{"health"}, tc.args...), cfg, &out, &errb, Options{})
			if ExitCode(err) != tc.code {
				t.Errorf("exit %d (%v), want %d", ExitCode(err), err, tc.code)
			}
		})
	}
}

// TestUnreachableNamesItsVariable: the error for a Redis that does not
// answer names the target (never its password) and the variable that
// set it; with only LEADRELAY_REDIS_CLUSTER set it named
// LEADRELAY_REDIS_URL, as the variable and as the address.
func TestUnreachableNamesItsVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       config.Config
		want, not string
	}{
		{"url", config.Config{Redis: config.Redis{URL: "redis://:s3cret@10.0.0.5:6379/0",
			Mode: config.RedisSingle, Addrs: []string{"10.0.0.5:6379"}, Password: "s3cret"}},
			"redis at 10.0.0.5:6379 is unreachable (is it running? LEADRELAY_REDIS_URL names it)", "s3cret"},
		{"cluster variable", config.Config{Redis: config.Redis{Mode: config.RedisCluster, Addrs: []string{"h1:7000", "h2:7001"}}},
			"redis at h1:7000,h2:7001 is unreachable (is it running? LEADRELAY_REDIS_CLUSTER names it)", "REDIS_URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := unreachable(tc.cfg, errors.New("dial tcp: refused")).Error()
			if !strings.Contains(got, tc.want) || strings.Contains(got, tc.not) {
				t.Errorf("error %q, want %q and no %q", got, tc.want, tc.not)
			}
		})
	}
}
