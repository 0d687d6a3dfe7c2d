package api_test

import (
	"encoding/json"
	"slices"
	"testing"

	"leadrelay/api"
	"leadrelay/lead"
)

// TestLeadFieldsMatchTable holds the document to the lead's field table:
// the Lead schema has exactly the table's fields (and the spam hint),
// every drop-in request names every field, and each field's maxLength,
// wherever it appears, is the table's.
func TestLeadFieldsMatchTable(t *testing.T) {
	t.Parallel()
	var doc any
	if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range lead.Fields() {
		names = append(names, f.Name)
	}
	checkLen := func(where, name string, schema any) {
		f, ok := lead.LookupField(name)
		if !ok {
			return
		}
		s, _ := schema.(map[string]any)
		if got, _ := s["maxLength"].(float64); int(got) != f.MaxLen {
			t.Errorf("%s: %s has maxLength %v, the table %d", where, name, s["maxLength"], f.MaxLen)
		}
	}
	hasAll := func(where string, got []string) {
		for _, n := range names {
			if !slices.Contains(got, n) {
				t.Errorf("%s does not name the lead field %s", where, n)
			}
		}
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				var got []string
				for name, schema := range props {
					got = append(got, name)
					checkLen(path, name, schema)
				}
				switch {
				case path == "/components/schemas/Lead":
					want := append(slices.Clone(names), "spam_hint")
					slices.Sort(want)
					slices.Sort(got)
					if !slices.Equal(got, want) {
						t.Errorf("Lead schema has %v, want %v", got, want)
					}
				case slices.Contains(got, "apikey"):
					hasAll(path, got)
				}
			}
			if params, ok := v["parameters"].([]any); ok {
				var got []string
				for _, p := range params {
					p, _ := p.(map[string]any)
					if p["in"] == "query" {
						name, _ := p["name"].(string)
						got = append(got, name)
						checkLen(path+" query", name, p["schema"])
					}
				}
				if slices.Contains(got, "apikey") {
					hasAll(path+" query", got)
				}
			}
			for k, e := range v {
				walk(path+"/"+k, e)
			}
		case []any:
			for _, e := range v {
				walk(path, e)
			}
		}
	}
	walk("", doc)
}
