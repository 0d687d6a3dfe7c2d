package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crmsim"
	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

// TestEndToEnd: intake -> real Redis -> 2 workers -> simulator. 500 unique
// leads, 20 repeats and 10 invalid ones: each valid lead reaches the CRM
// exactly once, repeats collapse, invalid ones get 400 and are never queued.
func TestEndToEnd(t *testing.T) {
	for _, api := range []string{"v1", "v2"} {
		t.Run(api, func(t *testing.T) {
			t.Parallel()
			rds, sim, env := backends(t, api)
			in := startApp(t, env, "intake")
			startApp(t, env, "worker")
			startApp(t, env, "worker")

			const n = 500
			ids := make([]string, n)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			for i := 0; i < n; i++ {
				wg.Add(1)
				sem <- struct{}{}
				go func(i int) {
					defer wg.Done()
					defer func() { <-sem }()
					code, body := postJSON(t, in.URL, testSiteKey, fmt.Sprintf("key-%d", i),
						map[string]any{"title": fmt.Sprintf("Lead %d", i), "email": marker(api, i), "utm_source": "e2e"})
					if code != http.StatusAccepted || body["status"] != "queued" {
						t.Errorf("lead %d: %d %v", i, code, body)
					}
					ids[i], _ = body["id"].(string)
				}(i)
			}
			wg.Wait()
			for i := 0; i < 20; i++ { // repeats: same key, same answer, no new task
				code, body := postJSON(t, in.URL, testSiteKey, fmt.Sprintf("key-%d", i),
					map[string]any{"title": fmt.Sprintf("Lead %d", i), "email": marker(api, i), "utm_source": "e2e"})
				if code != http.StatusOK || body["duplicate"] != true || body["id"] != ids[i] {
					t.Errorf("repeat %d: %d %v (want 200, duplicate, id %s)", i, code, body, ids[i])
				}
			}
			// A key reused for another lead is refused, naming the key
			// (issue 8 case 3): the second lead is not silently dropped.
			code, body := postJSON(t, in.URL, testSiteKey, "key-0",
				map[string]any{"title": "Someone else", "email": "other@example.com"})
			if msg, _ := body["error"].(string); code != http.StatusUnprocessableEntity || !strings.Contains(msg, `"key-0"`) {
				t.Errorf("reused key: %d %v, want 422 naming the key", code, body)
			}
			invalid := []map[string]any{
				{}, {"company": "no contact"}, {"email": "not-an-email"}, {"title": strings.Repeat("x", 300)},
				{"title": 5}, {"title": "x", "unknown": "y"}, {"title": "x", "id": 5}, {"title": []string{"a"}},
				{"title": "x", "email": "a@b", "phone": strings.Repeat("1", 100)}, {"title": "x", "ip": strings.Repeat("1", 60)},
			}
			for i, l := range invalid {
				code, body := postJSON(t, in.URL, testSiteKey, fmt.Sprintf("bad-%d", i), l)
				if code != http.StatusBadRequest || body["error"] == nil {
					t.Errorf("invalid lead %d %v: %d %v, want 400 naming the problem", i, l, code, body)
				}
			}

			waitUntil(t, 60*time.Second, func() string { return fmt.Sprintf("%d of %d leads in the CRM", len(sim.Leads()), n) },
				func() bool { return len(countByEmail(sim)) >= n })
			time.Sleep(300 * time.Millisecond) // a stray second add would land now
			counts := countByEmail(sim)
			for i := 0; i < n; i++ {
				if c := counts[marker(api, i)]; c != 1 {
					t.Errorf("lead %d is %d times in the CRM", i, c)
				}
			}
			if len(sim.Leads()) != n {
				t.Errorf("CRM holds %d leads, want %d", len(sim.Leads()), n)
			}
			qi, err := asynq.NewInspectorFromRedisClient(rds.Client()).GetQueueInfo("leads")
			if err != nil {
				t.Fatal(err)
			}
			if qi.Size+qi.Completed < n || qi.Archived != 0 {
				t.Errorf("queue: %+v", qi)
			}
			st := leadStatus(t, in.URL, ids[7])
			if st["status"] != "delivered" || st["crm_id"] == nil {
				t.Errorf("status of a delivered lead = %v", st)
			}
			if api == "v2" {
				var stamped int
				for _, l := range sim.Leads() {
					if l.UIDs["leadrelay_key"] != "" {
						stamped++
					}
				}
				if stamped != n {
					t.Errorf("%d of %d v2 leads carry the leadrelay_key uid", stamped, n)
				}
			}
		})
	}
}

// TestOutageRecovers: the CRM answers 503 for longer than the whole retry
// budget (3 retries of 100ms..400ms against a 3s outage), then recovers;
// every lead arrives once and none is dead-lettered, because the shared
// circuit breaker postpones deliveries without spending attempts.
func TestOutageRecovers(t *testing.T) {
	t.Parallel()
	rds, sim, env := backends(t, "v2")
	sim.SetFaults(crmsim.Faults{Outage: &crmsim.Outage{Mode: crmsim.OutageHTTP503, For: crmsim.Duration(3 * time.Second)}})
	env["LEADRELAY_MAX_RETRY"] = "3" // less than the outage would burn without the breaker
	in := startApp(t, env, "serve")
	const n = 50
	for i := 0; i < n; i++ {
		if code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": marker("outage", i)}); code != http.StatusAccepted {
			t.Fatalf("lead %d: %d %v", i, code, body)
		}
	}
	waitUntil(t, 60*time.Second, func() string { return fmt.Sprintf("%d of %d delivered", len(sim.Leads()), n) },
		func() bool { return len(sim.Leads()) >= n })
	time.Sleep(300 * time.Millisecond)
	if got := len(sim.Leads()); got != n {
		t.Errorf("CRM holds %d leads, want %d", got, n)
	}
	qi, err := asynq.NewInspectorFromRedisClient(rds.Client()).GetQueueInfo("leads")
	if err != nil {
		t.Fatal(err)
	}
	if qi.Archived != 0 {
		t.Errorf("%d leads dead-lettered by an outage", qi.Archived)
	}
}

// TestWrongKeyThenFixed: a CRM configuration problem (wrong key) outlasting
// the retry budget pauses delivery; nothing is dead-lettered, and once the
// key works again every lead is delivered once.
func TestWrongKeyThenFixed(t *testing.T) {
	t.Parallel()
	for _, api := range []string{"v1", "v2"} {
		t.Run(api, func(t *testing.T) {
			t.Parallel()
			rds, sim, env := backends(t, api)
			sim.SetFaults(crmsim.Faults{AuthFail: true})
			env["LEADRELAY_MAX_RETRY"] = "2"
			in := startApp(t, env, "serve")
			const n = 20
			for i := 0; i < n; i++ {
				if code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": marker("key"+api, i)}); code != http.StatusAccepted {
					t.Fatalf("lead %d: %d %v", i, code, body)
				}
			}
			// The preflight's stat or the first adds meet the wrong key.
			waitUntil(t, 20*time.Second, func() string { return "the CRM was never asked" }, func() bool {
				rq := sim.Stats().Requests
				return rq[api+".add"]+rq[api+".stat"] >= 1
			})
			time.Sleep(2 * time.Second) // longer than the whole retry budget
			insp := asynq.NewInspectorFromRedisClient(rds.Client())
			if qi, err := insp.GetQueueInfo("leads"); err != nil || qi.Archived != 0 {
				t.Fatalf("dead-lettered during a config problem: %+v %v", qi, err)
			}
			sim.SetFaults(crmsim.Faults{})
			waitUntil(t, 60*time.Second, func() string { return fmt.Sprintf("%d of %d delivered", len(sim.Leads()), n) },
				func() bool { return len(sim.Leads()) >= n })
			time.Sleep(300 * time.Millisecond)
			if got := len(sim.Leads()); got != n {
				t.Errorf("CRM holds %d leads, want %d", got, n)
			}
			if qi, err := insp.GetQueueInfo("leads"); err != nil || qi.Archived != 0 {
				t.Errorf("dead letters: %+v %v", qi, err)
			}
		})
	}
}

// TestNoSecondPost: a worker stopped mid-delivery hands the task back, and a
// task re-run after success does not post twice.
func TestNoSecondPost(t *testing.T) {
	t.Parallel()
	rds, sim, env := backends(t, "v1")
	sim.SetFaults(crmsim.Faults{Latency: crmsim.Duration(1500 * time.Millisecond)})
	env["LEADRELAY_SHUTDOWN_TIMEOUT"] = "200ms" // shorter than the CRM call: the task is handed back mid-call
	in := startApp(t, env, "intake")
	w1 := startApp(t, env, "worker")
	code, body := postJSON(t, in.URL, testSiteKey, "once", map[string]any{"email": "once@example.com"})
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, body)
	}
	id := body["id"].(string)
	// Stop the worker while its CRM call is in flight.
	waitUntil(t, 10*time.Second, func() string { return "the delivery never started" }, func() bool {
		return sim.Stats().Requests["v1.add"] > 0
	})
	w1.stop(t)
	sim.SetFaults(crmsim.Faults{})
	startApp(t, env, "worker")
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(leadStatus(t, in.URL, id)) }, func() bool {
		return leadStatus(t, in.URL, id)["status"] == "delivered"
	})
	// Re-run the completed task by hand, as an operator could after the
	// dedup window: the delivered marker must stop a second add.
	insp := asynq.NewInspectorFromRedisClient(rds.Client())
	info, err := insp.GetTaskInfo("leads", id)
	if err != nil {
		t.Fatal(err)
	}
	if err := insp.DeleteTask("leads", id); err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(rds.Client()).Enqueue(asynq.NewTask(info.Type, info.Payload, asynq.TaskID(id)), asynq.Queue("leads"), asynq.Retention(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, func() string { return "re-run task not processed" }, func() bool {
		ti, err := insp.GetTaskInfo("leads", id)
		return err == nil && ti.State == asynq.TaskStateCompleted
	})
	if got := countByEmail(sim)["once@example.com"]; got != 1 {
		t.Fatalf("lead is %d times in the CRM, want 1", got)
	}
}

// TestDeadLetterAndRerun: a lead the CRM rejects lands in the archive with
// the CRM's reason; re-running it after the cause is fixed delivers it,
// and its status (the site API's and ctl's) shows no stale failure and
// counts both runs (issue 16.5: after the re-run, ctl still showed "Last
// error … rejected" and attempts fell from 2 to 1; issue 19.5 again on the
// v2 simulator), on both API versions.
func TestDeadLetterAndRerun(t *testing.T) {
	t.Parallel()
	for _, api := range []string{"v1", "v2"} {
		t.Run(api, func(t *testing.T) {
			t.Parallel()
			deadLetterAndRerun(t, api)
		})
	}
}

// deadLetterAndRerun is TestDeadLetterAndRerun on API version api.
func deadLetterAndRerun(t *testing.T, api string) {
	rds, sim, env := backends(t, api)
	sim.SetFaults(crmsim.Faults{RejectMarker: "#bad"})
	in := startApp(t, env, "serve")
	code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"title": "Rejected #bad", "email": "dead@example.com"})
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, body)
	}
	id := body["id"].(string)
	insp := asynq.NewInspectorFromRedisClient(rds.Client())
	var info *asynq.TaskInfo
	waitUntil(t, 20*time.Second, func() string { return fmt.Sprint(info) }, func() bool {
		var err error
		info, err = insp.GetTaskInfo("leads", id)
		return err == nil && info.State == asynq.TaskStateArchived
	})
	if !strings.Contains(info.LastErr, "Ошибка добавления") {
		t.Errorf("archived task's reason = %q, want the CRM's error", info.LastErr)
	}
	st := leadStatus(t, in.URL, id)
	// The site reads a short reason; the CRM's text stays with the operators.
	if st["status"] != "dead" || st["last_error"] != (delivery.Reason{Code: delivery.CRMRejected}).Text(delivery.Sites) || st["attempts"] != 1.0 {
		t.Errorf("status = %v", st)
	}
	store := deadletter.New(rds.Client())
	rec, err := store.Get(t.Context(), id)
	if err != nil || rec.Reason.Code != delivery.CRMRejected || !strings.Contains(rec.Reason.Detail, "Ошибка добавления") || rec.Site != "shop" {
		t.Fatalf("dead-letter store: %+v, %v", rec, err)
	}
	sim.SetFaults(crmsim.Faults{}) // the cause is fixed; the operator re-runs it from the UI
	if err := insp.RunTask("leads", id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, func() string { return fmt.Sprint(leadStatus(t, in.URL, id)) }, func() bool {
		return leadStatus(t, in.URL, id)["status"] == "delivered"
	})
	if got := countByEmail(sim)["dead@example.com"]; got != 1 {
		t.Errorf("re-run lead is %d times in the CRM", got)
	}
	if n, err := store.Count(t.Context()); err != nil || n != 0 {
		t.Errorf("delivered lead still in the dead-letter store: %d, %v", n, err)
	}
	if st := leadStatus(t, in.URL, id); st["attempts"] != 2.0 || st["last_error"] != nil {
		t.Errorf("site's status after the re-run = %v, want 2 attempts and no last error", st)
	}
	out, _, err := runOnce(t, env, "ctl", "lead", "status", id)
	if err != nil {
		t.Fatal(err)
	}
	// The rejection stays in the lead's history (its runs), not in its state.
	now, runs, _ := strings.Cut(out, "\nRuns")
	if regexpFind(now, `Attempts\s+(\d+)\n`) != "2" || contains(now, "rejected") || contains(now, "Last") {
		t.Errorf("ctl lead status after the re-run:\n%s\nwant 2 attempts and no stale failure", out)
	}
	if regexpFind(runs, `(?s)1 .*(dead)\s.*crm_rejected.*\n\s+2 .*delivered`) == "" {
		t.Errorf("ctl lead status after the re-run:\n%s\nwant its runs: dead (rejected), then delivered", out)
	}
}

// TestRetriesExhausted: a lead whose CRM failures outlast its retry budget
// (with the circuit breaker out of the way) is dead with its last error, in
// asynq's archive and in the dead-letter store.
func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	rds, sim, env := backends(t, "v2")
	sim.SetFaults(crmsim.Faults{ErrorRate: 1, ErrorStatus: 503})
	env["LEADRELAY_MAX_RETRY"] = "2"
	env["LEADRELAY_BREAKER_THRESHOLD"] = "100"
	in := startApp(t, env, "serve")
	_, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": "exhausted@example.com"})
	id, _ := body["id"].(string)
	store := deadletter.New(rds.Client())
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(leadStatus(t, in.URL, id)) }, func() bool {
		rec, err := store.Get(t.Context(), id)
		return err == nil && rec.Reason.Code == delivery.RetriesExhausted && rec.Reason.Last == delivery.CRMUnreachable
	})
	waitUntil(t, 10*time.Second, func() string { return fmt.Sprint(leadStatus(t, in.URL, id)) }, func() bool {
		return leadStatus(t, in.URL, id)["status"] == "dead"
	})
}

// TestDropInSeedExample: the vendor page's exact add request, as GET and as
// POST, answers in the CRM's shape and reaches the CRM.
func TestDropInSeedExample(t *testing.T) {
	t.Parallel()
	_, sim, env := backends(t, "v1")
	// The site keeps the seed's login: only the key and the URL change.
	env["LEADRELAY_SITES"] = "vladislav@isaler.ru=" + testSiteKey
	in := startApp(t, env, "serve")
	// The seed's query, with the site's name and key in login and apikey.
	seed := "login=vladislav%40isaler.ru&apikey=" + testSiteKey + "&action=add&title=%D0%90%D0%BD%D0%B4%D1%80%D0%B5%D0%B5%D0%B2+%D0%B2%D0%BB%D0%B0%D0%B4%D0%B8%D1%81%D0%BB%D0%B0%D0%B2&email=vladislav%40god.ry&phone=%2B79001234567&company=SalesMan&description=The+best+crm+practice&ip=127.0.0.1&country=Ruusia&city=Perm&path=Test+Path&partner="
	get := func() (*http.Response, error) { return http.Get(in.URL + "/developer/v1/leads?" + seed) }
	post := func() (*http.Response, error) {
		q, _ := url.ParseQuery(seed)
		q.Set("phone", "+79001234568") // a second, different lead
		return http.PostForm(in.URL+"/developer/v1/leads", q)
	}
	for name, send := range map[string]func() (*http.Response, error){"GET": get, "POST": post} {
		resp, err := send()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), `{"result":{"text":"Success","id":"ld_`) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	waitUntil(t, 20*time.Second, func() string { return fmt.Sprint(len(sim.Leads())) }, func() bool { return len(sim.Leads()) == 2 })
	l := sim.Leads()[0]
	if l.Title != "Андреев владислав" || l.Email != "vladislav@god.ry" || l.City != "Perm" || l.Company != "SalesMan" || l.Description != "The best crm practice\nSite: vladislav@isaler.ru" {
		t.Errorf("lead in CRM = %+v", l)
	}
	// Wrong key and other actions answer in the CRM's shapes.
	for q, want := range map[string]string{
		"login=vladislav%40isaler.ru&apikey=wrong-key-wrong-key&action=add&title=x": `"code":"400"`,
		"login=vladislav%40isaler.ru&apikey=" + testSiteKey + "&action=list":        `"code":"402"`,
	} {
		resp, err := http.Get(in.URL + "/developer/v1/leads?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: %s, want %s", q, b, want)
		}
	}
}

// TestEmbeddedMode: serve with no Redis and no CRM configured starts and
// delivers a lead, and says it is not durable.
func TestEmbeddedMode(t *testing.T) {
	t.Parallel()
	in := startApp(t, map[string]string{"LEADRELAY_HTTP_ADDR": "127.0.0.1:0", "LEADRELAY_LOG_LEVEL": "warn"}, "serve")
	// The banner follows the listening lines that startApp waits for.
	waitUntil(t, 10*time.Second, func() string { return "banner incomplete:\n" + in.stdout.String() },
		func() bool { return contains(in.stdout.String(), "curl -s -X POST") })
	out := in.stdout.String()
	key := regexpFind(out, `demo site "demo", key ([0-9a-f]+)`)
	simURL := regexpFind(out, `simulator at (http://[0-9.:]+)`)
	if key == "" || simURL == "" || !contains(out, "WARNING: embedded in-memory Redis") || !contains(out, "curl -s -X POST") {
		t.Fatalf("banner lacks key, simulator, warning or curl:\n%s", out)
	}
	code, body := postJSON(t, in.URL, key, "", map[string]any{"title": "Ann Lee", "email": "ann@example.com"})
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, body)
	}
	id := body["id"].(string)
	waitUntil(t, 20*time.Second, func() string { return "not delivered" }, func() bool {
		return siteStatus(t, in.URL, key, id)["status"] == "delivered"
	})
	if leads := hatest.SimLeads(t, simURL); len(leads) != 1 || leads[0].Email != "ann@example.com" {
		t.Errorf("simulator holds %+v, want the lead", leads)
	}
}

// TestSiteBacklogCap: with the real store behind it, a site past
// LEADRELAY_SITE_MAX_QUEUED undelivered leads is refused with 429 and
// Retry-After, nothing of the refused lead stored; once the leads are
// delivered, the site is admitted again (issue 9 H3).
func TestSiteBacklogCap(t *testing.T) {
	t.Parallel()
	rds, sim, env := backends(t, "v2")
	env["LEADRELAY_SITE_MAX_QUEUED"] = "5"
	in := startApp(t, env, "intake") // no workers: leads stay undelivered
	for i := 0; i < 5; i++ {
		if code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": marker("cap", i)}); code != http.StatusAccepted {
			t.Fatalf("lead %d: %d %v", i, code, body)
		}
	}
	code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": marker("cap", 5)})
	if code != http.StatusTooManyRequests {
		t.Fatalf("lead past the cap: %d %v, want 429", code, body)
	}
	qi, err := asynq.NewInspectorFromRedisClient(rds.Client()).GetQueueInfo("leads")
	if err != nil || qi.Size != 5 {
		t.Fatalf("queue: %+v %v, want the 5 admitted leads only", qi, err)
	}
	w := startApp(t, env, "worker")
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprintf("%d delivered", len(sim.Leads())) },
		func() bool { return len(sim.Leads()) == 5 })
	w.stop(t)
	waitUntil(t, 10*time.Second, func() string { return "still refused after delivery" }, func() bool {
		code, _ := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": marker("cap", 5)})
		return code == http.StatusAccepted
	})
}

// TestEveryAttemptOnRecord: a lead the CRM fails twice (503, the
// simulator's fault, lifted as its second add is answered) and takes at
// the third run shows all three runs, in order, through the site API,
// `ctl lead status` and the ops page (issue 21: only dead leads had a
// history).
func TestEveryAttemptOnRecord(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	sim, _ := startSim(t)
	sim.SetFaults(crmsim.Faults{ErrorRate: 1, ErrorStatus: http.StatusServiceUnavailable})
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sim.ServeHTTP(w, r)
		if sim.Stats().Requests["v2.add"] >= 2 {
			sim.SetFaults(crmsim.Faults{}) // before the second add's answer leaves
		}
	}))
	t.Cleanup(crm.Close)
	env := baseEnv(rds.URL(), crm.URL, "v2")
	in := startApp(t, env, "serve")
	code, body := postJSON(t, in.URL, testSiteKey, "", map[string]any{"email": "thrice@example.com"})
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, body)
	}
	id := body["id"].(string)
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(leadStatus(t, in.URL, id)) }, func() bool {
		return leadStatus(t, in.URL, id)["status"] == "delivered"
	})
	want := []struct{ outcome, code string }{{"retry", "crm_unreachable"}, {"retry", "crm_unreachable"}, {"delivered", ""}}

	st := leadStatus(t, in.URL, id)
	runs, _ := st["timeline"].([]any)
	if len(runs) != len(want) || st["attempts"] != 3.0 {
		t.Fatalf("site's status: %d runs, %v attempts, want 3 and 3: %v", len(runs), st["attempts"], st)
	}
	for i, w := range want {
		r := runs[i].(map[string]any)
		if r["outcome"] != w.outcome || w.code != "" && r["reason_code"] != w.code || r["worker"] != nil || r["http_status"] != nil {
			t.Errorf("site's run %d = %v, want %s %s and nothing internal", i+1, r, w.outcome, w.code)
		}
	}

	out, _, err := runOnce(t, env, "ctl", "--json", "lead", "status", id)
	if err != nil {
		t.Fatal(err)
	}
	var ctl struct {
		Runs []struct {
			Outcome    string `json:"outcome"`
			ReasonCode string `json:"reason_code"`
			HTTPStatus int    `json:"http_status"`
			Worker     string `json:"worker"`
			Adds       int    `json:"adds"`
			CRMID      int64  `json:"crm_id"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &ctl); err != nil {
		t.Fatalf("ctl --json lead status: %v\n%s", err, out)
	}
	if len(ctl.Runs) != len(want) {
		t.Fatalf("ctl lead status: %d runs, want 3:\n%s", len(ctl.Runs), out)
	}
	for i, w := range want {
		r := ctl.Runs[i]
		if r.Outcome != w.outcome || r.ReasonCode != w.code || r.Worker == "" || r.Adds != 1 {
			t.Errorf("ctl's run %d = %+v, want %s %s on a named worker, one add", i+1, r, w.outcome, w.code)
		}
	}
	if ctl.Runs[0].HTTPStatus != http.StatusServiceUnavailable || ctl.Runs[2].CRMID == 0 {
		t.Errorf("ctl's runs: the first %+v should show HTTP 503, the last %+v the CRM id", ctl.Runs[0], ctl.Runs[2])
	}
	out, _, err = runOnce(t, env, "ctl", "lead", "status", id)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out)
	for _, line := range []string{`(?m)^\s+1\s.*retry\s+HTTP 503\s`, `(?m)^\s+2\s.*retry\s+HTTP 503\s`, `(?m)^\s+3\s.*delivered\s+id \d+\s`} {
		if regexpFind(out, "("+line+")") == "" {
			t.Errorf("ctl lead status lacks a line like %s:\n%s", line, out)
		}
	}
	pageShowsRuns(t, in.OpsURL, id, "retry", "retry", "delivered")
}

// pageShowsRuns fails t unless the ops page's view of lead id lists runs
// with these outcomes, oldest first.
func pageShowsRuns(t *testing.T, opsURL, id string, outcomes ...string) {
	t.Helper()
	code, page := get(t, opsURL+"/leads/"+id)
	var got []string
	for _, m := range regexp.MustCompile(`<td class="end">([a-z]+)`).FindAllStringSubmatch(page, -1) {
		got = append(got, m[1])
	}
	if code != http.StatusOK || !slices.Equal(got, outcomes) {
		t.Errorf("the ops page's timeline of %s: %d, runs %q, want %q", id, code, got, outcomes)
	}
}
