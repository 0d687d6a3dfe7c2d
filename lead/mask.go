package lead

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"leadrelay/internal/seal"
)

// MaskEmail shows an e-mail address as operators may see it: the first
// letter of its local part and the whole domain (a***@example.org), so a
// lead can be told apart and its site's domain checked without the address.
// Anything without a local part and a domain shows as "***"; "" stays "".
func MaskEmail(email string) string {
	if email == "" {
		return ""
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "***"
	}
	r, _ := utf8.DecodeRuneInString(email)
	return string(r) + "***" + email[at:]
}

// MaskName shows a lead's title as operators may see it: its first
// letter and "***" (A***). The title is the contact's name on most forms
// (fio, name), so it is personal data like the e-mail. "" stays "".
func MaskName(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return ""
	}
	r, _ := utf8.DecodeRuneInString(name)
	return string(r) + "***"
}

// MaskPhone shows a phone number as operators may see it: its last three
// digits only (***567). A number of fewer than six digits shows as "***":
// its last three would be most of it. "" stays "".
func MaskPhone(phone string) string {
	if phone == "" {
		return ""
	}
	var digits []byte
	for i := 0; i < len(phone); i++ {
		if c := phone[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) < 6 {
		return "***"
	}
	return "***" + string(digits[len(digits)-3:])
}

// Describe renders a task payload for operators' screens (asynqmon's
// payload column): its site and lead id, and its title and contact masked
// (MaskName, MaskEmail, MaskPhone), never the rest of the personal data. It never
// fails: a payload it cannot open says why, naming a missing key.
func (c Codec) Describe(b []byte) string {
	env, err := ReadEnvelope(b)
	if err != nil {
		return "unreadable lead payload"
	}
	head := fmt.Sprintf("site=%s lead=%s", env.Site, env.ID)
	p, err := c.Decode(b)
	var unknown *seal.UnknownKeyError
	switch {
	case errors.As(err, &unknown):
		return fmt.Sprintf("%s sealed under unknown key %s", head, unknown.ID)
	case errors.Is(err, ErrNoFields):
		return head + " (delivered: its fields are not kept)"
	case err != nil:
		return head + " (its sealed fields do not open)"
	}
	var sb strings.Builder
	sb.WriteString(head)
	if t := MaskName(p.Lead.Title); t != "" {
		sb.WriteString(" title=" + t)
	}
	if e := MaskEmail(p.Lead.Email); e != "" {
		sb.WriteString(" email=" + e)
	}
	if ph := MaskPhone(p.Lead.Phone); ph != "" {
		sb.WriteString(" phone=" + ph)
	}
	return sb.String()
}
