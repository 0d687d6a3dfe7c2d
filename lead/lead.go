package lead

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Lead is one contact-form submission, with the field names of the SalesMan
// leads API `add` action. The zero value is an empty lead, which Validate
// rejects.
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

// FieldNames lists the lead's wire names in the order of the SalesMan
// documentation. Decoders use it to reject unknown fields by name.
var FieldNames = []string{
	"title", "email", "phone", "company", "description", "ip", "country", "city",
	"path", "partner", "user", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
}

// Field returns a pointer to the field with the given wire name, or nil when
// the name is not a lead field. It lets decoders fill a Lead from a form
// without a second list of names.
func (l *Lead) Field(name string) *string {
	switch name {
	case "title":
		return &l.Title
	case "email":
		return &l.Email
	case "phone":
		return &l.Phone
	case "company":
		return &l.Company
	case "description":
		return &l.Description
	case "ip":
		return &l.IP
	case "country":
		return &l.Country
	case "city":
		return &l.City
	case "path":
		return &l.Path
	case "partner":
		return &l.Partner
	case "user":
		return &l.User
	case "utm_source":
		return &l.UTMSource
	case "utm_medium":
		return &l.UTMMedium
	case "utm_campaign":
		return &l.UTMCampaign
	case "utm_term":
		return &l.UTMTerm
	case "utm_content":
		return &l.UTMContent
	}
	return nil
}

// Normalize trims surrounding space and removes control characters (except
// newlines and tabs in the description) from every field. Invalid UTF-8 is
// left in place so that Validate can name the field.
func (l *Lead) Normalize() {
	for _, name := range FieldNames {
		p := l.Field(name)
		*p = clean(*p, name == "description")
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

// Hash returns a stable digest of the lead's content. The producer uses it as
// the idempotency key when a site sends none, so that a form posted twice in
// a row is one lead.
func (l Lead) Hash() string {
	h := sha256.New()
	for _, name := range FieldNames {
		p := l.Field(name)
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write([]byte(*p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
