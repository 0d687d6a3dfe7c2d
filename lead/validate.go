package lead

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// MaxPayloadBytes is the largest request body a lead may arrive in.
const MaxPayloadBytes = 64 << 10

// FieldError names one field and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// ValidationError lists every problem Validate found, so that a site fixes
// its form in one round trip.
type ValidationError struct {
	Fields []FieldError
}

// Error joins the problems into one line.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Problem
	}
	return "invalid lead: " + strings.Join(parts, "; ")
}

// Validate checks the lead and returns a *ValidationError naming every bad
// field, or nil. Call Normalize first.
func (l *Lead) Validate() error {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	hasContact := false
	for _, f := range fields {
		v := *f.Of(l)
		hasContact = hasContact || f.Contact && v != ""
		if !utf8.ValidString(v) {
			add(f.Name, "not valid UTF-8")
			continue
		}
		if n := utf8.RuneCountInString(v); n > f.MaxLen {
			add(f.Name, "too long: %d characters, at most %d", n, f.MaxLen)
		}
	}
	if !hasContact {
		add(contactFields[0], "one of %s is required", orList(contactFields))
	}
	for _, f := range fields {
		v := *f.Of(l)
		if v == "" || !utf8.ValidString(v) {
			continue
		}
		switch f.Rule {
		case Email:
			if !validEmail(v) {
				add(f.Name, "not an e-mail address")
			}
		case Phone:
			if n := digits(v); n < minPhoneDigits {
				add(f.Name, "not a phone number: it holds %d digits, at least %d needed", n, minPhoneDigits)
			}
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

// contactFields are the names of the fields of which a lead needs one.
var contactFields = func() []string {
	var names []string
	for _, f := range fields {
		if f.Contact {
			names = append(names, f.Name)
		}
	}
	return names
}()

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " <>,;")
}

// minPhoneDigits is the fewest digits a phone number has; it refuses text
// such as "call me" and leaves every national format alone.
const minPhoneDigits = 3

func digits(s string) int {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	return n
}
