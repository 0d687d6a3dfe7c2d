package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/internal/redistest"
	"leadrelay/internal/seal"
	"leadrelay/lead"
)

// erasePerson is a lead of one person whose fields are tokens a dump can
// be searched for; who and tag make each lead's title and text differ.
func erasePerson(who, tag string) map[string]any {
	return map[string]any{
		"title":       who + "Title" + tag + "Zq",
		"email":       strings.ToLower(who) + ".erasezq@example.org",
		"phone":       map[string]string{"Ann": "+7 900 777-12-34", "Bob": "+7 900 888-56-78", "Cy": "+7 900 999-90-12"}[who],
		"company":     who + "Company" + tag + "Zq",
		"description": who + "Description" + tag + "Zq #" + tag,
	}
}

// TestEraseLeavesNoTrace (issue 18): Ann has a delivered, a dead, a
// retrying and a queued lead, Bob a delivered and a queued one, all sent
// without idempotency keys. Erasing Ann (by e-mail through ctl, sealed;
// by phone through the ops listener, in plaintext) leaves none of her
// fields in any key name or value (SCAN, then every value read and
// DUMPed) nor in the RDB file after SAVE; in plaintext Bob's fields are
// found, so the search is not blind. Bob's leads are intact: his queued
// lead is delivered afterwards. Ann's delivered lead kept none of her
// fields (TestDeliveredKeepsNoFields), so the search finds the other
// three; it still answers delivered (its marker stays), her erased
// undelivered ones are never sent.
func TestEraseLeavesNoTrace(t *testing.T) {
	t.Parallel()
	eachSealing(t, func(t *testing.T, sealed bool, rds *redistest.Server, sim *crmsim.Sim, env map[string]string) {
		ids := queueTwoPeople(t, sim, env)
		var out string
		if sealed {
			stdout, stderr, err := runOnce(t, env, "ctl", "lead", "erase", "--email", "ANN.erasezq@example.org")
			if err != nil {
				t.Fatalf("ctl lead erase: %v\n%s%s", err, stdout, stderr)
			}
			if strings.Contains(stderr, "erasezq") || !strings.Contains(stderr, `"erasure"`) {
				t.Errorf("the audit line is missing or names the person:\n%s", stderr)
			}
			out = stdout
			if !strings.Contains(out, "erased: 3 tasks, 1 dead letters") || !strings.Contains(out, "2 undelivered leads dropped") {
				t.Errorf("ctl lead erase reports:\n%s", out)
			}
		} else {
			out = eraseThroughOps(t, env, `{"phone":"8 (900) 777 12 34"}`)
		}
		dump := rds.Dump(t)
		files := redisFiles(t, rds, false)
		for _, tag := range []string{"Done", "Dead", "Retry", "Queued"} {
			for _, s := range secretsOf(erasePerson("Ann", tag)) {
				if bytes.Contains(dump, []byte(s)) || bytes.Contains(files, []byte(s)) {
					t.Errorf("Ann's %s lead's %q is still in Redis after the erasure", tag, s)
				}
			}
		}
		for _, s := range secretsOf(erasePerson("Bob", "Queued")) {
			if !sealed && (!bytes.Contains(dump, []byte(s)) || !bytes.Contains(files, []byte(s))) {
				t.Errorf("plaintext run: Bob's queued lead's %q not found: the search is blind", s)
			}
		}
		bobStaysAnnIsGone(t, sim, env, ids, out)
	})
}

// queueTwoPeople leaves Ann's leads delivered, dead, retrying and queued
// and Bob's delivered and queued, and returns their ids by "Who/Tag".
func queueTwoPeople(t *testing.T, sim *crmsim.Sim, env map[string]string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	in := startApp(t, env, "serve")
	post := func(who, tag string) {
		code, body := postJSON(t, in.URL, testSiteKey, "", erasePerson(who, tag))
		if code != http.StatusAccepted {
			t.Fatalf("%s's %s lead: %d %v", who, tag, code, body)
		}
		ids[who+"/"+tag] = body["id"].(string)
	}
	until := func(name string, ok func(st map[string]any) bool) {
		waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(name, leadStatus(t, in.URL, ids[name])) },
			func() bool { return ok(leadStatus(t, in.URL, ids[name])) })
	}
	sim.SetFaults(crmsim.Faults{RejectMarker: "#Dead"})
	post("Ann", "Done")
	post("Bob", "Done")
	post("Ann", "Dead")
	for _, name := range []string{"Ann/Done", "Bob/Done"} {
		until(name, func(st map[string]any) bool { return st["status"] == "delivered" })
	}
	until("Ann/Dead", func(st map[string]any) bool { return st["status"] == "dead" })
	sim.SetFaults(crmsim.Faults{ErrorRate: 1, ErrorStatus: 503})
	post("Ann", "Retry")
	until("Ann/Retry", func(st map[string]any) bool { n, _ := st["attempts"].(float64); return n >= 2 })
	in.stop(t)
	in = startApp(t, env, "intake") // no worker: the next leads stay queued
	post("Ann", "Queued")
	post("Bob", "Queued")
	in.stop(t)
	return ids
}

// eraseThroughOps erases through POST /ops/erase on a running relay and
// returns the answer.
func eraseThroughOps(t *testing.T, env map[string]string, body string) string {
	t.Helper()
	in := startApp(t, env, "intake")
	defer in.stop(t)
	req, _ := http.NewRequest(http.MethodPost, in.OpsURL+"/ops/erase", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	code, m := doJSON(t, req)
	b, _ := json.Marshal(m)
	if code != http.StatusOK || m["tasks"] != 3.0 || m["dead_letters"] != 1.0 || m["undelivered"] != 2.0 {
		t.Fatalf("POST /ops/erase: %d %s", code, b)
	}
	return string(b)
}

// bobStaysAnnIsGone: with the CRM working again, Bob's queued lead is
// delivered; Ann's erased queued and retrying ones never are; her
// delivered lead still answers delivered.
func bobStaysAnnIsGone(t *testing.T, sim *crmsim.Sim, env map[string]string, ids map[string]string, report string) {
	t.Helper()
	sim.SetFaults(crmsim.Faults{})
	in := startApp(t, env, "serve")
	defer in.stop(t)
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(leadStatus(t, in.URL, ids["Bob/Queued"])) },
		func() bool { return leadStatus(t, in.URL, ids["Bob/Queued"])["status"] == "delivered" })
	if st := leadStatus(t, in.URL, ids["Ann/Done"]); st["status"] != "delivered" {
		t.Errorf("Ann's delivered lead after the erasure: %v; want delivered (its marker stays)", st)
	}
	for _, name := range []string{"Ann/Dead", "Ann/Retry", "Ann/Queued"} {
		if st := leadStatus(t, in.URL, ids[name]); st["status"] != nil && st["status"] != "not_found" && st["error"] == nil {
			t.Errorf("%s after the erasure: %v; want not found", name, st)
		}
		if !strings.Contains(report, ids[name]) {
			t.Errorf("the report does not name %s (%s):\n%s", name, ids[name], report)
		}
	}
	n := countByEmail(sim)
	if n["ann.erasezq@example.org"] != 1 || n["bob.erasezq@example.org"] != 2 {
		t.Errorf("CRM leads by e-mail: %v; want Ann's delivered one and Bob's two", n)
	}
}

// TestDeliveredKeepsNoFields (issue 18): once a lead is delivered, none
// of its fields is anywhere in Redis (its completed task keeps only its
// envelope), in plaintext too, while a queued lead's fields are found (the
// search is not blind); its status still answers delivered with the CRM
// id and the time it was received. Before, the completed task kept the
// whole payload for LEADRELAY_DEDUP_TTL.
func TestDeliveredKeepsNoFields(t *testing.T) {
	t.Parallel()
	rds, _, env := privacyBackends(t, false)
	in := startApp(t, env, "serve")
	code, body := postJSON(t, in.URL, testSiteKey, "order-1", erasePerson("Cy", "Done"))
	if code != http.StatusAccepted {
		t.Fatalf("lead: %d %v", code, body)
	}
	id := body["id"].(string)
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(leadStatus(t, in.URL, id)) },
		func() bool { return leadStatus(t, in.URL, id)["status"] == "delivered" })
	kept := func() []string {
		dump := rds.Dump(t)
		var found []string
		for _, s := range secretsOf(erasePerson("Cy", "Done")) {
			if bytes.Contains(dump, []byte(s)) {
				found = append(found, s)
			}
		}
		return found
	}
	waitUntil(t, 10*time.Second, func() string { return fmt.Sprint("fields kept after delivery: ", kept()) },
		func() bool { return len(kept()) == 0 })
	st := leadStatus(t, in.URL, id)
	if st["status"] != "delivered" || st["crm_id"] == nil || st["received_at"] == nil {
		t.Errorf("status after delivery: %v; want delivered with crm_id and received_at", st)
	}
	in.stop(t)
	in = startApp(t, env, "intake") // no worker: this one stays queued
	defer in.stop(t)
	if code, body := postJSON(t, in.URL, testSiteKey, "order-2", erasePerson("Cy", "Queued")); code != http.StatusAccepted {
		t.Fatalf("queued lead: %d %v", code, body)
	}
	dump := rds.Dump(t)
	for _, s := range secretsOf(erasePerson("Cy", "Queued")) {
		if !bytes.Contains(dump, []byte(s)) {
			t.Errorf("a queued lead's %q is not found: the search is blind", s)
		}
	}
}

// TestDeliveredDigestKeyed (issue 18): what a delivered lead keeps in
// Redis about its content (the digest in its task's envelope and, cut to
// 64 bits, in its delivered marker; the content hash as sent, for the CRM
// audit) is keyed with the relay's id key. Someone who knows the lead
// (here: all of it) and reads Redis finds none of what they could compute
// from it: its plain SHA-256, that digest's first 16 hex digits, or the
// plain hash of its content as the CRM lists it. Before, all three were in
// Redis for up to 30 days, so a one-field lead could be guessed.
func TestDeliveredDigestKeyed(t *testing.T) {
	t.Parallel()
	rds, _, env := privacyBackends(t, true)
	in := startApp(t, env, "intake") // no worker yet: the lead is read as intake stored it
	code, body := postJSON(t, in.URL, testSiteKey, "order-keyed", erasePerson("Cy", "Keyed"))
	if code != http.StatusAccepted {
		t.Fatalf("lead: %d %v", code, body)
	}
	id := body["id"].(string)
	l := storedLead(t, rds.Client(), id)
	in.stop(t)
	in = startApp(t, env, "serve")
	defer in.stop(t)
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(leadStatus(t, in.URL, id)) },
		func() bool { return leadStatus(t, in.URL, id)["status"] == "delivered" })
	// The envelope's sent hash is written once asynq marks the task
	// completed (worker/strip.go).
	waitUntil(t, 10*time.Second, func() string { return "the delivered task is not reduced to its envelope" },
		func() bool { return bytes.Contains(rds.Dump(t), []byte(`"sent":"`)) })

	plain := string(l.Digest())
	guesses := map[string]string{"plain digest": plain, "plain digest's first 64 bits": plain[:16]}
	c, err := crmclient.New(env["LEADRELAY_CRM_URL"], env["LEADRELAY_CRM_LOGIN"], env["LEADRELAY_CRM_APIKEY"],
		crmclient.WithAPIVersion(crmclient.V2))
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.List(t.Context(), crmclient.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Company == l.Company {
			guesses["plain hash as sent"] = crm.FingerprintHash(crm.Fingerprint(it))
		}
	}
	if len(guesses) != 3 {
		t.Fatalf("the CRM does not list the lead (%d leads listed)", len(items))
	}
	dump := rds.Dump(t)
	if !bytes.Contains(dump, []byte(id)) {
		t.Fatalf("the dump does not hold the lead's id %s: the search is blind", id)
	}
	for name, g := range guesses {
		if bytes.Contains(dump, []byte(g)) {
			t.Errorf("Redis holds the lead's %s %s: a guess of the lead can be tested against it", name, g)
		}
	}
}

// storedLead opens the task of lead id as intake stored it (sealed under
// the tests' data keys).
func storedLead(t *testing.T, rc redis.UniversalClient, id string) lead.Lead {
	t.Helper()
	info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(lead.DefaultQueue, id)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.Parse(testDataKeys)
	if err != nil {
		t.Fatal(err)
	}
	p, err := lead.NewCodec(keys).Decode(info.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return p.Lead
}
