package lead

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lead   Lead
		fields []string // bad fields expected, in order; nil = valid
	}{
		{"title only", Lead{Title: "Ann"}, nil},
		{"email only", Lead{Email: "ann@example.com"}, nil},
		{"phone only", Lead{Phone: "+79001234567"}, nil},
		{"ipv6", Lead{Title: "x", IP: "2001:db8::1"}, nil},
		{"empty", Lead{}, []string{"title"}},
		{"company alone is not enough", Lead{Company: "ACME"}, []string{"title"}},
		{"bad email", Lead{Email: "ann at example"}, []string{"email"}},
		{"email with name", Lead{Email: "Ann <ann@example.com>"}, []string{"email"}},
		{"invalid utf8", Lead{Title: "a\xffb", City: "\xc3"}, []string{"title", "city"}},
		{"too long", Lead{Title: strings.Repeat("я", 256), Phone: strings.Repeat("1", 65)}, []string{"title", "phone"}},
		{"all problems at once", Lead{Email: "bad", IP: strings.Repeat("1", 46)}, []string{"ip", "email"}},
		{"phone without digits", Lead{Title: "Ann", Phone: "call me"}, []string{"phone"}},
		{"phone with two digits", Lead{Phone: "ext 12"}, []string{"phone"}},
		{"national phone format", Lead{Phone: "8 (900) 123-45-67 доб. 2"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := tc.lead
			l.Normalize()
			err := l.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
				if f.Problem == "" {
					t.Errorf("field %s has no problem text", f.Field)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("bad fields = %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	l := Lead{Title: "  Ann\x00\x07 Lee\u2028 ", Description: "line1\r\nline2\tend\x1b", Email: " a@b.c "}
	l.Normalize()
	if l.Title != "Ann Lee" {
		t.Errorf("Title = %q", l.Title)
	}
	if l.Description != "line1\nline2\tend" {
		t.Errorf("Description = %q", l.Description)
	}
	if l.Email != "a@b.c" {
		t.Errorf("Email = %q", l.Email)
	}
}

func TestPayloadIDs(t *testing.T) {
	t.Parallel()
	l := Lead{Title: "Ann"}
	now := time.Now()
	a := NewPayload("shop", "k1", l, now)
	b := NewPayload("shop", "k1", Lead{Title: "Other"}, now)
	c := NewPayload("blog", "k1", l, now)
	if a.ID != b.ID {
		t.Errorf("same site+key gave different ids %s %s", a.ID, b.ID)
	}
	if a.ID == c.ID {
		t.Errorf("different sites share id %s", a.ID)
	}
	h1 := NewPayload("shop", "", l, now)
	h2 := NewPayload("shop", "", Lead{Title: "Ann"}, now.Add(time.Hour))
	h3 := NewPayload("shop", "", Lead{Title: "Bob"}, now)
	if h1.ID != h2.ID || h1.ID == h3.ID {
		t.Errorf("content-hash ids: %s %s %s", h1.ID, h2.ID, h3.ID)
	}
	if !strings.HasPrefix(h1.IdempotencyKey, "sha256:") {
		t.Errorf("derived key = %q", h1.IdempotencyKey)
	}
}

func TestTaskRoundTrip(t *testing.T) {
	t.Parallel()
	p := NewPayload("shop", "k1", Lead{Title: "Ann", UTMSource: "google"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	task, err := NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != TaskType {
		t.Errorf("type = %s", task.Type())
	}
	got, err := ParsePayload(task.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Errorf("round trip = %+v, want %+v", got, p)
	}
	for _, bad := range []string{"", "{}", "[1]", `{"id":"x","site":"s"}`} {
		if _, err := ParsePayload([]byte(bad)); err == nil {
			t.Errorf("ParsePayload(%q) = nil error", bad)
		}
	}
	if _, err := NewTask(Payload{}); err == nil {
		t.Error("NewTask(empty) = nil error")
	}
}

// TestFieldTable holds the table to the Lead struct: every struct field
// is one row named by its JSON name, each row reaches its own field, and
// every row is complete.
func TestFieldTable(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[Lead]()
	if typ.NumField() != len(Fields()) {
		t.Fatalf("Lead has %d fields, the table %d rows", typ.NumField(), len(Fields()))
	}
	for i := range typ.NumField() {
		sf := typ.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		f, ok := LookupField(name)
		if !ok {
			t.Errorf("struct field %s (json %q) has no row", sf.Name, name)
			continue
		}
		var l Lead
		reflect.ValueOf(&l).Elem().Field(i).SetString("x")
		for _, g := range Fields() {
			if got := *g.Of(&l); (got == "x") != (g.Name == name) {
				t.Errorf("row %s reads %q after setting %s", g.Name, got, sf.Name)
			}
		}
		if f.MaxLen <= 0 || f.CRM.V1 == "" || f.CRM.V2 == "" {
			t.Errorf("row %s is incomplete: %+v", f.Name, f)
		}
	}
	if _, ok := LookupField("id"); ok {
		t.Error(`LookupField("id") found a row: id is never a lead field`)
	}
	if len(contactFields) == 0 {
		t.Error("no contact field: Validate could accept an empty lead")
	}
}

// TestTaskSizeHTMLText is part of finding H3: json.Marshal escapes <, > and
// & as six bytes each, so a 35 KB form of '<' became a 215 KB task.
func TestTaskSizeHTMLText(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"<", ">", "&", "a"} {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			l := Lead{Title: strings.Repeat(c, 255), Company: strings.Repeat(c, 255), Description: strings.Repeat(c, 32000)}
			in := len(l.Title) + len(l.Company) + len(l.Description)
			task, err := NewTask(NewPayload("shop", "k1", l, time.Unix(0, 0)))
			if err != nil {
				t.Fatal(err)
			}
			b := task.Payload()
			if len(b) > in+512 {
				t.Errorf("payload of %d bytes of %q is %d bytes", in, c, len(b))
			}
			if b[len(b)-1] != '}' {
				t.Errorf("payload ends with %q, want the closing brace", b[len(b)-1])
			}
			got, err := ParsePayload(b)
			if err != nil || got.Lead != l {
				t.Errorf("round trip failed: %v", err)
			}
		})
	}
}
