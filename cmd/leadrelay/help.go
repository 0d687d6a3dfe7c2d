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
Needs LEADRELAY_REDIS_URL and LEADRELAY_SITES_FILE (or LEADRELAY_SITES); SIGHUP
reloads the sites file.`,
	"worker": `delivery of queued leads to the CRM; start as many as you like against one
Redis. Needs LEADRELAY_REDIS_URL, LEADRELAY_CRM_URL, LEADRELAY_CRM_LOGIN and
LEADRELAY_CRM_APIKEY. Needs no port: no site listener unless LEADRELAY_HTTP_ADDR
(or --addr) is set, and health and metrics on a free loopback port that the
banner prints, unless LEADRELAY_OPS_ADDR is set.`,
}

// roleSkips are the config sections a role does not read: an intake never
// talks to the CRM, a worker serves no site.
var roleSkips = map[string][]string{
	"intake": {config.SectionCRM, config.SectionWorker, config.SectionNotify},
	"worker": {config.SectionIntake},
}

// roleVars are the settings a role reads.
func roleVars(role string) []config.Var {
	var out []config.Var
	for _, v := range config.Vars() {
		if !slices.Contains(roleSkips[role], v.Section) {
			out = append(out, v)
		}
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
