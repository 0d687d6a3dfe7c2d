package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// printExports prints, in demo mode, the shell lines that point ctl (or a
// second worker) at this process's embedded Redis and simulator. A real
// CRM's key is never printed; the simulator's is random and dies with it.
func printExports(w io.Writer, rds *Redis, crm *CRM) {
	if rds.mini == nil {
		return
	}
	fmt.Fprintln(w, "ctl against this process (in another terminal):")
	fmt.Fprintf(w, "  export LEADRELAY_REDIS_URL=redis://%s/0\n", rds.mini.Addr())
	if crm != nil && crm.Sim != nil {
		fmt.Fprintf(w, "  export LEADRELAY_CRM_URL=%s LEADRELAY_CRM_LOGIN=%s LEADRELAY_CRM_APIKEY=%s\n", crm.URL, crm.SimLogin, crm.SimKey)
	}
	fmt.Fprintln(w, "  go run ./cmd/leadrelay ctl queues")
}

// printBanner prints where the run listens and what to try first.
func (r *relay) printBanner(out io.Writer) {
	// Written in one piece, so a reader never sees half a banner.
	w := new(bytes.Buffer)
	defer func() { _, _ = out.Write(w.Bytes()) }()
	ops := "http://" + r.opsLn.Addr().String()
	if r.ln == nil {
		fmt.Fprintf(w, "LeadRelay %s worker: no site listener (LEADRELAY_HTTP_ADDR opens one)\n", Version)
		fmt.Fprintf(w, "ops (operators only) listening on %s\n", ops)
		fmt.Fprintf(w, "health: %s/healthz  %s/readyz\n", ops, ops)
		fmt.Fprintf(w, "metrics: %s/metrics\n", ops)
		return
	}
	base := "http://" + r.ln.Addr().String()
	rds, crm, sites := r.rds, r.crm, r.sites
	embeddedRedis := rds.Embedded
	fmt.Fprintf(w, "LeadRelay %s listening on %s\n", Version, base)
	fmt.Fprintf(w, "ops (operators only) listening on %s\n", ops)
	printExports(w, rds, crm)
	if embeddedRedis {
		fmt.Fprintln(w, "WARNING: embedded in-memory Redis: queued leads are lost when this process stops (set LEADRELAY_REDIS_URL)")
	}
	if crm != nil && crm.Sim != nil {
		fmt.Fprintf(w, "CRM: embedded SalesMan simulator at %s (leads: %s/_sim/leads)\n", crm.URL, crm.URL)
	}
	fmt.Fprintf(w, "health: %s/healthz  %s/readyz  (with the reasons: %s/readyz)\n", base, base, ops)
	fmt.Fprintf(w, "metrics: %s/metrics\n", ops)
	if !r.roles.Intake {
		return
	}
	printOpsUI(w, r.opsUI, ops)
	fmt.Fprintf(w, "intake: POST %s/v1/leads  and SalesMan drop-in %s/developer/v1/leads\n", base, base)
	if demo, ok := sites[demoSite]; ok && embeddedRedis && len(demo.Keys) > 0 {
		key := demo.Keys[0]
		fmt.Fprintf(w, "demo site %q, key %s\n", demoSite, key)
		fmt.Fprintf(w, "try:\n  curl -s -X POST %s/v1/leads -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"title\":\"Ann Lee\",\"email\":\"ann@example.com\",\"description\":\"Call me\"}'\n", base, key)
		return
	}
	fmt.Fprintf(w, "sites: %s\n", strings.Join(sites.Names(), ", "))
}

// printOpsUI names the operators' front page and, when that is not
// asynqmon itself, where asynqmon is; the dead leads' JSON routes are
// for scripts and go unnamed here.
func printOpsUI(w io.Writer, opsUI, ops string) {
	if asynqmon := ops + uiPath + "/"; opsUI != asynqmon {
		fmt.Fprintf(w, "ops UI: %s  (queues in asynqmon: %s)\n", opsUI, asynqmon)
		return
	}
	fmt.Fprintf(w, "ops UI: %s  (queue leads; dead leads: tab Archived, or leadrelay ctl dead list)\n", opsUI)
}

// opsHome is the path of the ops listener's front page: LeadRelay's own
// page at / when mux serves one, else asynqmon's /ui/.
func opsHome(mux *http.ServeMux) string {
	if _, pattern := mux.Handler(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}}); pattern != "" {
		return "/"
	}
	return uiPath + "/"
}
