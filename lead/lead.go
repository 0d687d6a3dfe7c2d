package lead

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Lead is one contact-form submission, with the field names of the SalesMan
// leads API `add` action. The field table (Fields) says what each field
// is; the JSON names here must be its wire names (a test holds them to it).
// The zero value is an empty lead, which Validate rejects.
type Lead struct {
	Title       string `json:"title,omitempty"`
	Email       string `json:"email,omitempty"`
	Phone       string `json:"phone,omitempty"`
	Company     string `json:"company,omitempty"`
	Description string `json:"description,omitempty"`
	IP          string `json:"ip,omitempty"`
	Country     string `json:"country,omitempty"`
	City        string `json:"city,omitempty"`
	Path        string `json:"path,omitempty"`
	Partner     string `json:"partner,omitempty"`
	User        string `json:"user,omitempty"`
	UTMSource   string `json:"utm_source,omitempty"`
	UTMMedium   string `json:"utm_medium,omitempty"`
	UTMCampaign string `json:"utm_campaign,omitempty"`
	UTMTerm     string `json:"utm_term,omitempty"`
	UTMContent  string `json:"utm_content,omitempty"`
}

// Normalize trims surrounding space and removes control characters (except
// newlines and tabs in multi-line fields) from every field. Invalid UTF-8 is
// left in place so that Validate can name the field.
func (l *Lead) Normalize() {
	for _, f := range fields {
		p := f.Of(l)
		*p = clean(*p, f.Multiline)
	}
}

func clean(s string, multiline bool) string {
	if plain(s) {
		return s // the common case, and every field the second time round
	}
	if !utf8.ValidString(s) {
		return strings.TrimSpace(s)
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case multiline && (r == '\n' || r == '\t'):
			return r
		case r == '\r' && multiline:
			return -1
		case unicode.IsControl(r), r == '\u2028', r == '\u2029', r == '\ufeff':
			if unicode.IsSpace(r) {
				return ' '
			}
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// plain reports whether s is printable ASCII without surrounding space:
// what clean would return unchanged.
func plain(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
