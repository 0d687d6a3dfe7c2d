package ctl

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

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
