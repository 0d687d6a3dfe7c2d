package crmclient

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"leadrelay/lead"
)

// What the real CRM drops, and what the client does about it before
// sending (../shared/salesman/README.md, "More seen on the running CRM"):
//
//   - v2 add never stores ip (NULL in every lead): the client appends it
//     to the description as its last line, "IP: 203.0.113.7".
//   - 4-byte UTF-8 characters (emoji) are stored as "????" (utf8mb3
//     tables): the client replaces each with a visible stand-in.
//
// Both are on by default and switched by WithSanitize.

// DefaultStandIn replaces a 4-byte character: U+FFFD, which the CRM's
// utf8mb3 columns can store, shows that something was there.
const DefaultStandIn = "\uFFFD"

// IPLinePrefix starts the description line that carries a v2 lead's ip.
const IPLinePrefix = "IP: "

// Sanitize says what the client changes in a lead before sending it. The
// zero value changes nothing; DefaultSanitize is what New uses.
type Sanitize struct {
	// IPInDescription appends a v2 lead's ip to its description as the
	// last line (v2 drops the ip field). v1 stores ip and is unaffected.
	IPInDescription bool
	// StandIn replaces every 4-byte UTF-8 character in text fields; empty
	// sends them as they are (and the CRM stores "????").
	StandIn string
}

// DefaultSanitize keeps the ip on v2 and replaces emoji with U+FFFD.
var DefaultSanitize = Sanitize{IPInDescription: true, StandIn: DefaultStandIn}

// WithSanitize sets what the client changes before sending (default
// DefaultSanitize). A stand-in must itself fit the CRM: valid UTF-8 of
// characters of at most 3 bytes.
func WithSanitize(s Sanitize) Option {
	return func(c *Client) error {
		if !utf8.ValidString(s.StandIn) || ReplaceWide(s.StandIn, "") != s.StandIn {
			return fmt.Errorf("stand-in %q must be valid UTF-8 without 4-byte characters", s.StandIn)
		}
		c.fix = s
		return nil
	}
}

// ReplaceWide replaces every character outside the Basic Multilingual
// Plane (4 bytes in UTF-8: emoji, rare CJK) with standIn. Invalid bytes
// are left alone.
func ReplaceWide(s, standIn string) string {
	wide := false
	for _, r := range s {
		if r > 0xFFFF {
			wide = true
			break
		}
	}
	if !wide {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r > 0xFFFF {
			b.WriteString(standIn)
		} else {
			b.WriteString(s[i : i+n]) // invalid bytes too, as they are
		}
		i += n
	}
	return b.String()
}

// WithIPLine returns description with "IP: ip" as its last line, or
// description itself when ip is empty or the line is there already (a
// resend must not add it twice).
func WithIPLine(description, ip string) string {
	if ip == "" {
		return description
	}
	line := IPLinePrefix + ip
	if description == "" {
		return line
	}
	if strings.HasSuffix(description, "\n"+line) || description == line {
		return description
	}
	return description + "\n" + line
}

// DropUntagChars removes the characters the CRM's untag() strips from
// every text it stores, after the tags: " ' \ ` « » < >. What the CRM
// lists lacks them, so a comparison with what was sent drops them too.
func DropUntagChars(s string) string {
	if !strings.ContainsAny(s, "\"'\\`«»<>") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '"', '\'', '\\', '`', '«', '»', '<', '>':
			return -1
		}
		return r
	}, s)
}

// Sent returns l as this client sends it to the CRM: with the sanitizing
// of WithSanitize applied for its API version. Anything that compares
// what the CRM lists with what was sent (a v1 reconcile) compares Sent(l).
func (c *Client) Sent(l Lead) Lead {
	s := c.fix
	if s.StandIn != "" {
		for _, f := range lead.Fields() {
			p := f.Of(&l.Lead)
			*p = ReplaceWide(*p, s.StandIn)
		}
	}
	if c.version == V2 && s.IPInDescription {
		l.Description = WithIPLine(l.Description, l.IP)
	}
	return l
}
