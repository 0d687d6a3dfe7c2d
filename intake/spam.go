package intake

import (
	"strings"
	"unicode/utf8"

	"leadrelay/lead"
)

// MaxSpamHint is the longest spam hint, in characters, the JSON API takes;
// the drop-in endpoint cuts longer values instead, since old forms cannot
// be told.
const MaxSpamHint = 255

// spamHintField is the JSON API's spam hint field.
const spamHintField = "spam_hint"

// dropInHintFields are the drop-in parameters that carry a spam hint: the
// usual honeypot names. A form with a real "website" field shows it as a
// hint; the CRM operator decides.
var dropInHintFields = []string{spamHintField, "honeypot", "hp", "website"}

// withSpamHint appends the hint to the description as a marked last line,
// where the CRM operator sees it and can give the lead the CRM's "spam"
// result. Intake never drops a lead for a hint: a honeypot catches people
// too (browser autofill), and a silent drop cannot be undone.
func withSpamHint(description, hint string) string {
	if hint == "" {
		return description
	}
	line := "[spam hint: " + hint + "]"
	if description == "" {
		return line
	}
	return description + "\n" + line
}

// cleanHint makes a hint one clean line with the rules lead fields follow.
func cleanHint(s string) string {
	l := lead.Lead{Title: strings.ToValidUTF8(s, "\uFFFD")}
	l.Normalize()
	return l.Title
}

// cutRunes shortens s to at most n characters, the last an ellipsis when
// it cut.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n-1 {
			return s[:j] + "…"
		}
		i++
	}
	return s
}
