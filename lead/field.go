package lead

import (
	"fmt"
	"slices"
	"strings"
)

// Rule is the check a field's value gets beyond valid UTF-8 and its length.
type Rule int

// The rules a field may have.
const (
	// Text is any text.
	Text Rule = iota
	// Email is one bare address: no display name, no list.
	Email
	// Phone holds at least minPhoneDigits digits, in any national format.
	Phone
)

// CRMParam names a field's parameter in the SalesMan leads API's add, in
// each API version. An empty name means that version has no such
// parameter and the field is not sent.
type CRMParam struct {
	V1 string // developer/v1/leads
	V2 string // developer/v2/lead
}

// Field is one row of the lead's field table: everything decoding,
// validation, the CRM mapping and the content digest need to know of a
// field. Read the table with Fields or LookupField; it is never changed.
type Field struct {
	// Name is the wire name: the JSON member, the drop-in parameter and
	// the key in a task's payload.
	Name string
	// MaxLen is the longest value in characters. The limits fit the CRM's
	// columns with room to spare; description is bounded by the payload.
	MaxLen int
	// Rule is the field's own check.
	Rule Rule
	// Contact marks the fields of which a lead needs at least one.
	Contact bool
	// Multiline keeps newlines and tabs; other fields turn them into spaces.
	Multiline bool
	// CRM is the field's parameter in the CRM's add.
	CRM CRMParam
	// Aliases are other names real forms give the field, in lower case,
	// which the drop-in maps to it (LookupAlias); the first listed wins
	// when a form sends several. Never a Name or alias of another field.
	Aliases []string
	// digestV1 marks the fields digest v1 hashed even when empty, as every
	// field was hashed before the digest had versions. A field added later
	// leaves it false, so a lead that leaves it empty keeps its digest.
	digestV1 bool
	// value is where the field lives in a Lead.
	value func(*Lead) *string
}

// Of returns a pointer to the field's value in l.
func (f Field) Of(l *Lead) *string { return f.value(l) }

// same is a CRM parameter named like the field in every version.
func same(name string) CRMParam { return CRMParam{V1: name, V2: name} }

// fields is the table, in the order of the SalesMan documentation. The order
// is part of digest v1: never reorder the rows that have digestV1 set.
var fields = [...]Field{
	{Name: "title", MaxLen: 255, Contact: true, CRM: same("title"), digestV1: true,
		Aliases: []string{"name", "fio", "fullname", "full_name", "first_name", "firstname", "client_name", "contact_name", "your-name"},
		value:   func(l *Lead) *string { return &l.Title }},
	{Name: "email", MaxLen: 254, Rule: Email, Contact: true, CRM: same("email"), digestV1: true,
		Aliases: []string{"e-mail", "e_mail", "mail", "email_address", "your-email"},
		value:   func(l *Lead) *string { return &l.Email }},
	{Name: "phone", MaxLen: 64, Rule: Phone, Contact: true, CRM: same("phone"), digestV1: true,
		Aliases: []string{"tel", "telephone", "phone_number", "phonenumber", "mobile", "mobile_phone", "your-phone", "your-tel"},
		value:   func(l *Lead) *string { return &l.Phone }},
	{Name: "company", MaxLen: 255, CRM: same("company"), digestV1: true,
		Aliases: []string{"organization", "organisation", "company_name", "firm", "org"},
		value:   func(l *Lead) *string { return &l.Company }},
	{Name: "description", MaxLen: 32000, Multiline: true, CRM: same("description"), digestV1: true,
		Aliases: []string{"message", "comment", "comments", "text", "msg", "question", "note", "notes", "your-message"},
		value:   func(l *Lead) *string { return &l.Description }},
	{Name: "ip", MaxLen: 45, CRM: same("ip"), digestV1: true,
		value: func(l *Lead) *string { return &l.IP }},
	{Name: "country", MaxLen: 100, CRM: same("country"), digestV1: true,
		value: func(l *Lead) *string { return &l.Country }},
	{Name: "city", MaxLen: 100, CRM: same("city"), digestV1: true,
		Aliases: []string{"town", "your-city"},
		value:   func(l *Lead) *string { return &l.City }},
	// The client source (channel); v2 renamed its parameter.
	{Name: "path", MaxLen: 255, CRM: CRMParam{V1: "path", V2: "clientpath"}, digestV1: true,
		value: func(l *Lead) *string { return &l.Path }},
	{Name: "partner", MaxLen: 255, CRM: same("partner"), digestV1: true,
		value: func(l *Lead) *string { return &l.Partner }},
	// The responsible employee's login; v2 takes the parameter and ignores it.
	{Name: "user", MaxLen: 255, CRM: same("user"), digestV1: true,
		value: func(l *Lead) *string { return &l.User }},
	{Name: "utm_source", MaxLen: 255, CRM: same("utm_source"), digestV1: true,
		value: func(l *Lead) *string { return &l.UTMSource }},
	{Name: "utm_medium", MaxLen: 255, CRM: same("utm_medium"), digestV1: true,
		value: func(l *Lead) *string { return &l.UTMMedium }},
	{Name: "utm_campaign", MaxLen: 255, CRM: same("utm_campaign"), digestV1: true,
		value: func(l *Lead) *string { return &l.UTMCampaign }},
	{Name: "utm_term", MaxLen: 255, CRM: same("utm_term"), digestV1: true,
		value: func(l *Lead) *string { return &l.UTMTerm }},
	{Name: "utm_content", MaxLen: 255, CRM: same("utm_content"), digestV1: true,
		value: func(l *Lead) *string { return &l.UTMContent }},
}

// byName finds a row by wire name or alias.
var byName = func() map[string]int {
	m := make(map[string]int, 2*len(fields))
	for i, f := range fields {
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			if _, dup := m[n]; dup {
				panic(fmt.Sprintf("lead: field name or alias %q appears twice in the table", n))
			}
			m[n] = i
		}
	}
	return m
}()

// Fields returns the field table in its order. Callers must not change it.
func Fields() []Field { return fields[:] }

// LookupField returns the field with the given wire name. Aliases do not
// count: the JSON API takes wire names only.
func LookupField(name string) (Field, bool) {
	i, ok := byName[name]
	if !ok || fields[i].Name != name {
		return Field{}, false
	}
	return fields[i], true
}

// LookupAlias returns the field a form's parameter name stands for: a wire
// name or an alias, in any case ("Name", "TEL"), and the alias's place in
// the field's Aliases (-1 for the wire name itself), which ranks the names
// of one field when a form sends several. Only the drop-in reads aliases.
func LookupAlias(name string) (f Field, rank int, ok bool) {
	lower := strings.ToLower(name)
	i, ok := byName[lower]
	if !ok {
		return Field{}, 0, false
	}
	f = fields[i]
	return f, slices.Index(f.Aliases, lower), true
}

// Field returns a pointer to the field with the given wire name, or nil when
// the name is not a lead field: LookupField and Of in one.
func (l *Lead) Field(name string) *string {
	f, ok := LookupField(name)
	if !ok {
		return nil
	}
	return f.Of(l)
}
