package lead

import (
	"strings"
	"testing"
)

func TestAttributionApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    Attribution
		in   Lead
		want Lead
	}{
		{"description", AttributeDescription, Lead{Title: "Ann"}, Lead{Title: "Ann", Description: "Site: oldshop"}},
		{"description after text", AttributeDescription, Lead{Description: "Call me"}, Lead{Description: "Call me\nSite: oldshop"}},
		{"zero value is the default", "", Lead{Description: "Call me"}, Lead{Description: "Call me\nSite: oldshop"}},
		{"path", AttributePath, Lead{Title: "Ann"}, Lead{Title: "Ann", Path: "oldshop"}},
		{"utm_source", AttributeUTMSource, Lead{Title: "Ann"}, Lead{Title: "Ann", UTMSource: "oldshop"}},
		{"partner", AttributePartner, Lead{Title: "Ann"}, Lead{Title: "Ann", Partner: "oldshop"}},
		{"the lead's own path stays", AttributePath, Lead{Path: "Yandex"}, Lead{Path: "Yandex", Description: "Site: oldshop"}},
		{"the lead's own utm_source stays", AttributeUTMSource, Lead{UTMSource: "google", Description: "Hi"},
			Lead{UTMSource: "google", Description: "Hi\nSite: oldshop"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := tc.in
			tc.a.Apply(&l, "oldshop")
			if l != tc.want {
				t.Errorf("Apply = %+v, want %+v", l, tc.want)
			}
			tc.a.Apply(&l, "oldshop")
			if l != tc.want {
				t.Errorf("Apply twice = %+v, want %+v", l, tc.want)
			}
		})
	}
}

// TestAttributionFits: the site line never makes a valid lead too long;
// the description's end gives way.
func TestAttributionFits(t *testing.T) {
	t.Parallel()
	for _, n := range []int{descriptionMaxLen - 14, descriptionMaxLen - 13, descriptionMaxLen} {
		l := Lead{Title: "Ann", Description: strings.Repeat("я", n)}
		AttributeDescription.Apply(&l, "oldshop")
		l.Normalize()
		if err := l.Validate(); err != nil {
			t.Fatalf("%d characters: %v", n, err)
		}
		if !strings.HasSuffix(l.Description, "я\nSite: oldshop") && !strings.HasSuffix(l.Description, "я…\nSite: oldshop") {
			t.Errorf("%d characters: the description ends %q", n, l.Description[len(l.Description)-40:])
		}
	}
}

func TestParseAttribution(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Attribution{
		"": DefaultAttribution, "path": AttributePath, " utm_source ": AttributeUTMSource,
		"partner": AttributePartner, "description": AttributeDescription,
	} {
		if got, err := ParseAttribution(in); err != nil || got != want {
			t.Errorf("ParseAttribution(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"site", "clientpath", "Path"} {
		if _, err := ParseAttribution(bad); err == nil || !strings.Contains(err.Error(), "description, path, utm_source, partner") {
			t.Errorf("ParseAttribution(%q) = %v, want an error naming the choices", bad, err)
		}
	}
}

func TestLookupAlias(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, field string
		rank        int
	}{
		{"name", "title", 0}, {"fio", "title", 1}, {"FIO", "title", 1}, {"Title", "title", -1},
		{"tel", "phone", 0}, {"telephone", "phone", 1}, {"e-mail", "email", 0},
		{"message", "description", 0}, {"comment", "description", 1}, {"text", "description", 3},
		{"organization", "company", 0}, {"town", "city", 0}, {"utm_source", "utm_source", -1},
	}
	for _, tc := range tests {
		f, rank, ok := LookupAlias(tc.name)
		if !ok || f.Name != tc.field || rank != tc.rank {
			t.Errorf("LookupAlias(%q) = %s, %d, %v; want %s, %d", tc.name, f.Name, rank, ok, tc.field, tc.rank)
		}
	}
	for _, unknown := range []string{"surname", "submit", "site", ""} {
		if f, _, ok := LookupAlias(unknown); ok {
			t.Errorf("LookupAlias(%q) = %s, want none", unknown, f.Name)
		}
	}
	// Aliases are lower case (LookupAlias lowers the name) and never a
	// wire name: the JSON API must keep refusing them.
	for _, f := range Fields() {
		for _, a := range f.Aliases {
			if a != strings.ToLower(a) {
				t.Errorf("alias %q of %s is not lower case", a, f.Name)
			}
			if _, ok := LookupField(a); ok {
				t.Errorf("alias %q of %s is a wire name", a, f.Name)
			}
		}
	}
}
