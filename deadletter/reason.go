package deadletter

import (
	"regexp"
	"strings"
)

// Wrapping that the raw delivery error carries and people need not read:
// asynq's and the Go packages' prefixes and suffixes.
var (
	reasonPrefixes = []string{"dead: ", "crmclient: add: ", "crmclient: ", "worker: "}
	reasonSuffixes = []string{": skip retry for the task", ": task skipped"}
	crmErrorRE     = regexp.MustCompile(`^CRM error (\w+): (.*)$`)
)

// ShortReason turns a dead lead's raw reason into the sentence operators
// read in lists: without the packages' wrapping, and a CRM refusal as
// "the CRM rejected the lead (code 1: …)". The raw reason stays in the
// record (ctl dead show, GET /ops/dead/{id}).
func ShortReason(raw string) string {
	s := strings.TrimSpace(raw)
	for changed := true; changed; {
		changed = false
		for _, p := range reasonPrefixes {
			if t, ok := strings.CutPrefix(s, p); ok {
				s, changed = t, true
			}
		}
		for _, x := range reasonSuffixes {
			if t, ok := strings.CutSuffix(s, x); ok {
				s, changed = t, true
			}
		}
	}
	if m := crmErrorRE.FindStringSubmatch(s); m != nil {
		return "the CRM rejected the lead (code " + m[1] + ": " + strings.TrimSpace(m[2]) + ")"
	}
	return s
}
