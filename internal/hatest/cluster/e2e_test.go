// Package cluster runs LeadRelay's end-to-end path on a 3-primary Redis
// Cluster: intake, workers, dead letters, requeue, ctl, the status API and
// asynqmon's API.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"leadrelay/crmsim"
	"leadrelay/internal/hatest"
	"leadrelay/internal/redistest"
)

const rejectMarker = "#reject-me"

// notClusterSafe names the parts that still fail on a cluster, with the
// reason; their subtests skip saying so. Empty it as they are fixed.
var notClusterSafe = map[string]string{}

// skipUnsafe skips t when its part is not cluster-safe yet, unless
// LEADRELAY_TEST_CLUSTER_ALL is set (to check a fix).
func skipUnsafe(t *testing.T, part string) {
	t.Helper()
	if why, ok := notClusterSafe[part]; ok && os.Getenv("LEADRELAY_TEST_CLUSTER_ALL") == "" {
		t.Skipf("not cluster-safe yet: %s", why)
	}
}

func TestEndToEndOnCluster(t *testing.T) {
	hatest.Short(t)
	bin := hatest.Binary(t)
	cl := redistest.StartCluster(t, 3)
	sim, crmURL := hatest.StartSim(t, 0)
	sim.SetFaults(crmsim.Faults{RejectMarker: rejectMarker})
	env := hatest.Env(cl.URL(), crmURL, "LEADRELAY_MAX_RETRY=3")
	in, workers := hatest.StartRelay(t, bin, env, 2)
	ctx := context.Background()
	client := &http.Client{Timeout: 5 * time.Second}
	ops := in.OpsURL()

	const n, dead = 300, 3
	pub := &hatest.Publisher{URL: in.URL, Rate: 200, Prefix: "cluster"}
	pub.Run(ctx, n, nil)
	var deadIDs []string
	for i := 0; i < dead; i++ {
		code, id, err := hatest.PostLead(ctx, client, in.URL(), fmt.Sprintf("cluster-dead-%d@example.com", i), "never "+rejectMarker)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("post a lead the CRM rejects: %d %v", code, err)
		}
		deadIDs = append(deadIDs, id)
	}
	res := hatest.WaitDelivered(t, sim, pub.Acked(), time.Minute)
	check := func(name string, ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Errorf("%s: "+format, append([]any{name}, args...)...)
		}
	}
	check("delivery", len(res.Lost) == 0 && len(res.Duplicated) == 0 && res.Acked == n,
		"%s%s", res, hatest.Explain(append(res.Lost, res.Duplicated...), workers...))

	t.Run("status API", func(t *testing.T) {
		a := pub.Acked()[0]
		var st map[string]any
		code := getJSON(t, client, in.URL()+"/v1/leads/"+a.ID, hatest.SiteKey, &st)
		if code != http.StatusOK || st["status"] != "delivered" || st["crm_id"] == nil {
			t.Errorf("status of a delivered lead: %d %v", code, st)
		}
	})
	t.Run("dead letters", func(t *testing.T) {
		skipUnsafe(t, "dead letters")
		var list struct {
			Total int `json:"total"`
		}
		deadline := time.Now().Add(30 * time.Second)
		for getJSON(t, client, ops+"/ops/dead", "", &list) == http.StatusOK && list.Total < dead && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if list.Total != dead {
			t.Fatalf("dead-letter store holds %d leads, want %d", list.Total, dead)
		}
		var rec map[string]any
		if code := getJSON(t, client, ops+"/ops/dead/"+deadIDs[0], "", &rec); code != http.StatusOK || rec["reason"] == "" {
			t.Errorf("GET /ops/dead/{id}: %d %v", code, rec)
		}
	})
	archivedLeft := dead // what asynq's archive holds once the requeue ran
	t.Run("requeue", func(t *testing.T) {
		skipUnsafe(t, "dead letters")
		sim.SetFaults(crmsim.Faults{}) // the CRM takes them now
		if code, b := call(t, client, http.MethodPost, ops+"/ops/dead/"+deadIDs[0]+"/requeue", ""); code != http.StatusOK {
			t.Fatalf("requeue: %d %s", code, b)
		}
		requeued := []hatest.Acked{{Email: "cluster-dead-0@example.com", ID: deadIDs[0], At: time.Now()}}
		if r := hatest.WaitDelivered(t, sim, requeued, 30*time.Second); r.Delivered != 1 || len(r.Duplicated) != 0 {
			t.Errorf("requeued lead: %s%s", r, hatest.Explain(requeued, workers...))
		}
		archivedLeft-- // the requeued lead left asynq's archive
	})
	t.Run("ctl", func(t *testing.T) {
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"--json", "queues"}, `"leads"`},
			{[]string{"--json", "lead", "status", pub.Acked()[1].ID}, `"delivered"`},
			{[]string{"--json", "dead", "list"}, deadIDs[1]},
		}
		for _, tc := range tests {
			t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
				if tc.args[1] == "dead" {
					skipUnsafe(t, "dead letters")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, append([]string{"ctl"}, tc.args...)...)
				cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.Contains(string(out), tc.want) {
					t.Errorf("leadrelay ctl %v: %v\n%s", tc.args, err, out)
				}
			})
		}
	})
	t.Run("asynqmon API", func(t *testing.T) {
		var queues struct {
			Queues []struct {
				Queue string `json:"queue"`
			} `json:"queues"`
		}
		code := getJSON(t, client, ops+"/ui/api/queues", "", &queues)
		if code != http.StatusOK || len(queues.Queues) == 0 || queues.Queues[0].Queue != "leads" {
			t.Errorf("GET /ui/api/queues: %d %+v", code, queues)
		}
		// asynq's own archive holds the dead leads whatever LeadRelay's store does.
		var archived struct {
			Tasks []struct {
				ID string `json:"id"`
			} `json:"tasks"`
		}
		deadline := time.Now().Add(30 * time.Second)
		for getJSON(t, client, ops+"/ui/api/queues/leads/archived_tasks", "", &archived) == http.StatusOK && len(archived.Tasks) < archivedLeft && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if len(archived.Tasks) < archivedLeft {
			t.Errorf("asynqmon lists %d archived tasks, want %d", len(archived.Tasks), archivedLeft)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		code, b := call(t, client, http.MethodGet, in.MetricsURL()+"/metrics", "")
		if code != http.StatusOK || !strings.Contains(string(b), `asynq_queue_size{queue="leads"}`) {
			t.Errorf("GET /metrics: %d, asynq's queue gauges missing:\n%.500s", code, b)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		skipUnsafe(t, "rate limit")
		limited := hatest.Start(t, bin, "intake-limited", append(env, "LEADRELAY_SITE_RATE_LIMIT=1"), "intake")
		got429 := 0
		for i := 0; i < 10; i++ {
			code, _, err := hatest.PostLead(ctx, client, limited.URL(), fmt.Sprintf("cluster-burst-%d@example.com", i), "burst")
			if err == nil && code == http.StatusTooManyRequests {
				got429++
			}
		}
		if got429 == 0 {
			t.Errorf("10 leads at once against a limit of 1/s: no 429; intake log:\n%s", limited.Tail())
		}
	})
	var skipped []string
	for part := range notClusterSafe {
		skipped = append(skipped, part)
	}
	sort.Strings(skipped)
	hatest.Summary(t, fmt.Sprintf("ha cluster e2e: primaries=3 %s dead=%d passed=%v not_cluster_safe_yet=%q", res, dead, !t.Failed(), skipped))
}

// getJSON GETs url, as the site with key or, when key is "", as an
// operator, and decodes the answer into v.
func getJSON(t *testing.T, client *http.Client, url, key string, v any) int {
	t.Helper()
	code, b := call(t, client, http.MethodGet, url, key)
	if err := json.Unmarshal(b, v); err != nil {
		t.Errorf("GET %s: %d, not JSON: %.200s", url, code, b)
	}
	return code
}

// call sends method url as a site with key, or as the operator when key is
// "", and returns the status and body.
func call(t *testing.T, client *http.Client, method, url, key string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	} else {
		req.SetBasicAuth(hatest.OpsUser, hatest.OpsPassword)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
