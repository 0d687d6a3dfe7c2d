package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Prefix starts the name of every LeadRelay environment variable.
const Prefix = "LEADRELAY_"

// Var is one setting LeadRelay reads: its environment variable, its default
// as text (empty: none) and whether its value is secret.
type Var struct {
	// Name is the environment variable, e.g. LEADRELAY_MAX_RETRY.
	Name string
	// Default is the value used when the variable is unset; empty for none.
	Default string
	// Secret values never appear in errors, logs or help.
	Secret bool
	// Section is the Config section the setting belongs to (SectionCRM…),
	// so help texts can list a role's settings.
	Section string
}

// Vars lists every setting Load reads, in Load's order. The defaults come
// from Load itself, so they cannot drift from it.
func Vars() []Var {
	_, p := load(func(string) string { return "" })
	return p.vars
}

// Problem is one bad setting. Its Text quotes the bad value unless the
// setting is secret.
type Problem struct {
	// Var is the environment variable at fault.
	Var string
	// Text says what is wrong, e.g. `must be v1 or v2, got "v3"`.
	Text string
}

// Error returns "VAR text".
func (p *Problem) Error() string { return p.Var + " " + p.Text }

// Problems are every problem Load found, sorted.
type Problems []*Problem

// Err joins the problems into one error (nil when there are none); each
// problem stays reachable with errors.As.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// For keeps the problems of the named variables only, as one error (nil:
// those settings are fine). A command that needs only Redis checks
// For(RedisVars...) and runs although a worker-only setting is bad.
func (ps Problems) For(names ...string) error {
	var keep Problems
	for _, p := range ps {
		if slices.Contains(names, p.Var) {
			keep = append(keep, p)
		}
	}
	return keep.Err()
}

// RedisVars are the settings a command needs to reach Redis and LeadRelay's
// queue and dead-letter store there.
var RedisVars = []string{"LEADRELAY_REDIS_URL", "LEADRELAY_REDIS_URL_FILE", "LEADRELAY_REDIS_CLUSTER", "LEADRELAY_REDIS_SENTINEL_PASSWORD",
	"LEADRELAY_REDIS_SENTINEL_PASSWORD_FILE", "LEADRELAY_QUEUE", "LEADRELAY_MAX_RETRY", "LEADRELAY_DEDUP_TTL"}

// DataVars are the settings a command needs to read or write a lead's
// fields in Redis (ctl's lead find, dead show, rekey).
var DataVars = []string{"LEADRELAY_DATA_KEYS", "LEADRELAY_DATA_KEYS_FILE", "LEADRELAY_DATA_UNENCRYPTED"}

// CRMVars are the settings a command needs to talk to the CRM.
var CRMVars = []string{"LEADRELAY_CRM_URL", "LEADRELAY_CRM_API", "LEADRELAY_CRM_JSON", "LEADRELAY_CRM_LOGIN",
	"LEADRELAY_CRM_APIKEY", "LEADRELAY_CRM_APIKEY_FILE", "LEADRELAY_CRM_TIMEOUT"}

// Unknown returns one warning for every LEADRELAY_* variable in environ
// ("NAME=value" entries, as os.Environ gives them) that LeadRelay does not
// read, with the closest known name when one is near: a typo would
// otherwise be ignored silently. The values are never quoted.
func Unknown(environ []string) []string {
	known := map[string]bool{}
	var names []string
	for _, v := range Vars() {
		known[v.Name] = true
		names = append(names, v.Name)
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, Prefix) || known[name] || strings.HasPrefix(name, Prefix+"TEST_") {
			continue
		}
		w := fmt.Sprintf("unknown setting %s is ignored", name)
		if near := closest(name, names); near != "" {
			w += fmt.Sprintf("; did you mean %s?", near)
		}
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}

// closest is the known name nearest to name by edit distance, if it is
// near enough to be a typo.
func closest(name string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		d := distance(strings.TrimPrefix(name, Prefix), strings.TrimPrefix(k, Prefix))
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD > 3 || bestD*3 > len(strings.TrimPrefix(name, Prefix)) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// shortDuration prints 1h, 30s, 2m, 720h instead of 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
