package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/crmsim"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// rotatedDataKeys puts a new key k2 before the tests' k1: k2 seals, both open.
const rotatedDataKeys = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=," + testDataKeys

// person is a lead whose every field is a token a dump can be searched for.
func person(tag string) map[string]any {
	return map[string]any{
		"title":       "Title" + tag + "Zq",
		"email":       "mail" + strings.ToLower(tag) + "zq@example.org",
		"phone":       "+7 900 " + map[string]string{"Queued": "111", "Retry": "222", "Dead": "333", "Done": "444", "New": "555"}[tag] + "-55-66",
		"company":     "Company" + tag + "Zq",
		"description": "Description" + tag + "Zq #" + tag,
	}
}

// secretsOf are the strings of lead p that Redis must not hold: in its
// files while sealed, anywhere once p is erased.
func secretsOf(p map[string]any) []string {
	return []string{p["title"].(string), p["email"].(string), p["phone"].(string), p["company"].(string), p["description"].(string)}
}

// TestRedisFilesHoldNoLeadFields: after leads are queued, retried,
// dead-lettered and delivered, neither the RDB file nor the append-only
// file holds any of their fields; in plaintext (the opt-out) both do, so
// the search is sound. With a rotated keyring the old leads still deliver,
// and new ones are sealed under the new key.
func TestRedisFilesHoldNoLeadFields(t *testing.T) {
	t.Parallel()
	eachSealing(t, func(t *testing.T, sealed bool, rds *redistest.Server, sim *crmsim.Sim, env map[string]string) {
		leads := queueEveryState(t, rds, sim, env)
		files := redisFiles(t, rds, true)
		for tag, p := range leads {
			for _, s := range secretsOf(p) {
				found := bytes.Contains(files, []byte(s))
				if sealed && found {
					t.Errorf("the %s lead's %q is in Redis's files in plaintext", tag, s)
				}
				if !sealed && !found {
					t.Errorf("plaintext run: %s lead's %q not found in Redis's files: the search is blind", tag, s)
				}
			}
		}
		if sealed {
			rotatedStillDelivers(t, rds, sim, env, leads)
			rekeyLeavesNoOldKey(t, rds, env)
		}
	})
}

// privacyBackends are a Redis whose files are searched (uncompressed, so
// a field LZF would hide cannot pass the search), the simulator, and a
// relay's environment against them, sealing or (the opt-out) not.
func privacyBackends(t *testing.T, sealed bool) (*redistest.Server, *crmsim.Sim, map[string]string) {
	t.Helper()
	rds := redistest.StartWith(t, "--rdbcompression", "no", "--aof-use-rdb-preamble", "no")
	sim, crmURL := startSim(t)
	env := baseEnv(rds.URL(), crmURL, "v2")
	env["LEADRELAY_BREAKER_THRESHOLD"] = "1000"
	if !sealed {
		delete(env, "LEADRELAY_DATA_KEYS")
		env["LEADRELAY_DATA_UNENCRYPTED"] = "true"
	}
	return rds, sim, env
}

// eachSealing runs test twice, as parallel subtests against backends of
// their own: sealing, and in plaintext (the opt-out), where what a sealed
// run must not find is found, so the search is not blind.
func eachSealing(t *testing.T, test func(t *testing.T, sealed bool, rds *redistest.Server, sim *crmsim.Sim, env map[string]string)) {
	t.Helper()
	for _, sealed := range []bool{true, false} {
		t.Run(fmt.Sprintf("sealed=%v", sealed), func(t *testing.T) {
			t.Parallel()
			rds, sim, env := privacyBackends(t, sealed)
			test(t, sealed, rds, sim, env)
		})
	}
}

// queueEveryState leaves one lead delivered, one dead, one retrying and one
// queued, and returns them by state.
func queueEveryState(t *testing.T, rds *redistest.Server, sim *crmsim.Sim, env map[string]string) map[string]map[string]any {
	t.Helper()
	leads := map[string]map[string]any{"Done": person("Done"), "Dead": person("Dead"), "Retry": person("Retry"), "Queued": person("Queued")}
	sim.SetFaults(crmsim.Faults{RejectMarker: "#Dead"})
	in := startApp(t, env, "serve")
	ids := map[string]string{}
	post := func(tag string) {
		code, body := postJSON(t, in.URL, testSiteKey, "", leads[tag])
		if code != http.StatusAccepted {
			t.Fatalf("%s lead: %d %v", tag, code, body)
		}
		ids[tag] = body["id"].(string)
	}
	until := func(tag string, ok func(st map[string]any) bool) {
		waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(tag, leadStatus(t, in.URL, ids[tag])) },
			func() bool { return ok(leadStatus(t, in.URL, ids[tag])) })
	}
	post("Done")
	post("Dead")
	until("Done", func(st map[string]any) bool { return st["status"] == "delivered" })
	until("Dead", func(st map[string]any) bool { return st["status"] == "dead" })
	sim.SetFaults(crmsim.Faults{ErrorRate: 1, ErrorStatus: 503})
	post("Retry")
	until("Retry", func(st map[string]any) bool { n, _ := st["attempts"].(float64); return n >= 2 })
	in.stop(t)
	in = startApp(t, env, "intake") // no worker: the next lead stays queued
	post("Queued")
	until("Queued", func(st map[string]any) bool { return st["status"] == "queued" })
	in.stop(t)
	return leads
}

// redisFiles saves a snapshot and returns the RDB file and (aof) every
// append-only file of rds, concatenated.
func redisFiles(t *testing.T, rds *redistest.Server, aof bool) []byte {
	t.Helper()
	if err := rds.Client().Save(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	var all []byte
	saw := map[string]bool{}
	err := filepath.WalkDir(rds.Dir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".rdb"):
			saw["rdb"] = true
		case aof && strings.Contains(path, "appendonly"):
			saw["aof"] = true
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		all = append(all, b...)
		return err
	})
	if err != nil || !saw["rdb"] || saw["aof"] != aof {
		t.Fatalf("Redis files: %v (rdb %v, aof %v)", err, saw["rdb"], saw["aof"])
	}
	return all
}

// rotatedStillDelivers restarts the relay with k2 put before k1: the
// queued and retrying leads, sealed under k1, deliver, as does a plaintext
// task of the version before sealing, and a new lead is sealed under k2.
func rotatedStillDelivers(t *testing.T, rds *redistest.Server, sim *crmsim.Sim, env map[string]string, leads map[string]map[string]any) {
	t.Helper()
	sim.SetFaults(crmsim.Faults{})
	env["LEADRELAY_DATA_KEYS"] = rotatedDataKeys
	old, err := lead.NewTask(lead.NewPayload("shop", "before-sealing", lead.Lead{Email: "legacy@example.org"}, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	cli := asynq.NewClientFromRedisClient(rds.Client())
	if _, err := cli.Enqueue(old, lead.TaskOptions("leads", 3, time.Hour)...); err != nil {
		t.Fatal(err)
	}
	in := startApp(t, env, "serve")
	waitUntil(t, 30*time.Second, func() string { return fmt.Sprint(countByEmail(sim)) }, func() bool {
		n := countByEmail(sim)
		return n[leads["Queued"]["email"].(string)] == 1 && n[leads["Retry"]["email"].(string)] == 1 && n["legacy@example.org"] == 1
	})
	code, body := postJSON(t, in.URL, testSiteKey, "", person("New"))
	if code != http.StatusAccepted {
		t.Fatalf("new lead: %d %v", code, body)
	}
	info, err := asynq.NewInspectorFromRedisClient(rds.Client()).GetTaskInfo("leads", body["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if env, err := lead.ReadEnvelope(info.Payload); err != nil || env.Key != "k2" {
		t.Errorf("a new lead after the rotation: key %q, %v; want k2", env.Key, err)
	}
}

// rekeyLeavesNoOldKey: `ctl rekey` re-seals every stored lead (the dead
// lead's letter and archived task, the delivered ones' completed tasks)
// under k2, so the snapshot names k1 nowhere; a second run finds nothing
// to do.
func rekeyLeavesNoOldKey(t *testing.T, rds *redistest.Server, env map[string]string) {
	t.Helper()
	oldKey := []byte(`"key":"k1"`)
	if !bytes.Contains(redisFiles(t, rds, false), oldKey) {
		t.Fatal("no lead is sealed under k1 before the rekey: the test proves nothing")
	}
	out, stderr, err := runOnce(t, env, "ctl", "rekey")
	if err != nil {
		t.Fatalf("ctl rekey: %v\n%s%s", err, out, stderr)
	}
	if bytes.Contains(redisFiles(t, rds, false), oldKey) {
		t.Errorf("a lead is still sealed under k1 after ctl rekey:\n%s", out)
	}
	again, _, err := runOnce(t, env, "ctl", "rekey")
	if err != nil || !strings.Contains(again, "resealed 0,") {
		t.Errorf("a second ctl rekey: %v\n%s", err, again)
	}
}
