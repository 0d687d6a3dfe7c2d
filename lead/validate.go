package lead

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// MaxPayloadBytes is the largest request body a lead may arrive in.
const MaxPayloadBytes = 64 << 10

// maxLen holds the longest value, in characters, each field may have. The
// limits fit the CRM's columns with room to spare; description is bounded by
// the payload limit.
var maxLen = map[string]int{
	"title": 255, "email": 254, "phone": 64, "company": 255, "description": 32000,
	"ip": 45, "country": 100, "city": 100, "path": 255, "partner": 255, "user": 255,
	"utm_source": 255, "utm_medium": 255, "utm_campaign": 255, "utm_term": 255, "utm_content": 255,
}

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
	for _, name := range FieldNames {
		v := *l.Field(name)
		if !utf8.ValidString(v) {
			add(name, "not valid UTF-8")
			continue
		}
		if n := utf8.RuneCountInString(v); n > maxLen[name] {
			add(name, "too long: %d characters, at most %d", n, maxLen[name])
		}
	}
	if l.Title == "" && l.Email == "" && l.Phone == "" {
		add("title", "one of title, email or phone is required")
	}
	if l.Email != "" && utf8.ValidString(l.Email) && !validEmail(l.Email) {
		add("email", "not an e-mail address")
	}
	if l.Phone != "" && digits(l.Phone) < minPhoneDigits {
		add("phone", "not a phone number: it holds %d digits, at least %d needed", digits(l.Phone), minPhoneDigits)
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
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
