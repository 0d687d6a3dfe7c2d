package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"leadrelay/config"
)

// roleHelp describes serve, intake and worker for --help.
var roleHelp = map[string]string{
	"serve": `intake + worker + ops UI in one process. With no LEADRELAY_REDIS_URL and no
LEADRELAY_CRM_URL it embeds Redis and a CRM simulator (demo mode, not durable)
and prints the exports that point ctl at them.`,
	"intake": `the HTTP intake (JSON API, SalesMan drop-in), the ops UI and health.
Needs LEADRELAY_REDIS_URL and LEADRELAY_SITES.`,
	"worker": `delivery of queued leads to the CRM; start as many as you like against one
Redis. Needs LEADRELAY_REDIS_URL, LEADRELAY_CRM_URL, LEADRELAY_CRM_LOGIN and
LEADRELAY_CRM_APIKEY.`,
}

// workerOnly and intakeOnly are the settings that matter to one role only;
// every other setting is listed for both.
var (
	workerOnly = []string{"LEADRELAY_CRM_URL", "LEADRELAY_CRM_API", "LEADRELAY_CRM_JSON", "LEADRELAY_CRM_LOGIN",
		"LEADRELAY_CRM_APIKEY", "LEADRELAY_CRM_APIKEY_FILE", "LEADRELAY_CRM_TIMEOUT", "LEADRELAY_CRM_RATE_LIMIT",
		"LEADRELAY_CRM_IP_IN_DESCRIPTION", "LEADRELAY_CRM_REPLACE_EMOJI",
		"LEADRELAY_CRM_MAX_CONCURRENT", "LEADRELAY_CRM_ADAPTIVE", "LEADRELAY_CONCURRENCY", "LEADRELAY_RETRY_INITIAL", "LEADRELAY_RETRY_MULTIPLIER",
		"LEADRELAY_RETRY_MAX_DELAY", "LEADRELAY_RECONCILE_UNKNOWN", "LEADRELAY_RECONCILE_AFTER",
		"LEADRELAY_BREAKER_THRESHOLD", "LEADRELAY_BREAKER_COOLDOWN", "LEADRELAY_NOTIFY_URL"}
	intakeOnly = []string{"LEADRELAY_REDIS_WAIT_REPLICAS", "LEADRELAY_REDIS_WAIT_TIMEOUT", "LEADRELAY_SITES",
		"LEADRELAY_SITE_ORIGINS", "LEADRELAY_SITE_SECRETS", "LEADRELAY_SITE_RATE_LIMIT", "LEADRELAY_SITE_LEAD_RATE_LIMIT", "LEADRELAY_GLOBAL_RATE_LIMIT",
		"LEADRELAY_TRUSTED_PROXIES", "LEADRELAY_UI_USER", "LEADRELAY_UI_PASSWORD", "LEADRELAY_UI_READONLY"}
)

// roleVars are the settings a role reads.
func roleVars(role string) []config.Var {
	var out []config.Var
	for _, v := range config.Vars() {
		if (role == "intake" && slices.Contains(workerOnly, v.Name)) || (role == "worker" && slices.Contains(intakeOnly, v.Name)) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// printVars lists settings with their defaults, for help texts.
func printVars(w io.Writer, vars []config.Var) {
	fmt.Fprintln(w, "\nEnvironment (meanings: README.md#configuration):")
	for _, v := range vars {
		var note []string
		if v.Default != "" {
			note = append(note, "default "+v.Default)
		}
		if v.Secret {
			note = append(note, "secret")
		}
		if len(note) > 0 {
			fmt.Fprintf(w, "  %-32s %s\n", v.Name, strings.Join(note, ", "))
		} else {
			fmt.Fprintf(w, "  %s\n", v.Name)
		}
	}
}
