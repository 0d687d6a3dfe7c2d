package intake

import (
	"bytes"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"leadrelay/lead"
)

// charset is a character encoding the drop-in reads: UTF-8 or one of the
// single-byte Cyrillic encodings old Russian sites post in.
type charset struct {
	// name is the canonical (WHATWG) name, as answers and logs give it.
	name string
	// cm decodes and encodes a single-byte charset; nil is UTF-8.
	cm *charmap.Charmap
}

var (
	utf8Charset    = charset{name: "utf-8"}
	win1251Charset = charset{name: "windows-1251", cm: charmap.Windows1251}
	koi8rCharset   = charset{name: "koi8-r", cm: charmap.KOI8R}
	iso88595       = charset{name: "iso-8859-5", cm: charmap.ISO8859_5}
)

// legacyCharsets are the candidates for text that is not UTF-8, most
// common first (guessCharset prefers the earlier on a tie).
var legacyCharsets = []charset{win1251Charset, koi8rCharset, iso88595}

// charsetLabels are the labels of the WHATWG Encoding Standard for the
// charsets the drop-in reads, lower case.
var charsetLabels = func() map[string]charset {
	m := map[string]charset{}
	for cs, labels := range map[charset][]string{
		utf8Charset:    {"utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"},
		win1251Charset: {"windows-1251", "cp1251", "x-cp1251"},
		koi8rCharset:   {"koi8-r", "koi8_r", "koi8", "koi", "cskoi8r"},
		iso88595:       {"iso-8859-5", "iso8859-5", "iso88595", "iso_8859-5", "iso_8859-5:1988", "iso-ir-144", "csisolatincyrillic", "cyrillic"},
	} {
		for _, l := range labels {
			m[l] = cs
		}
	}
	return m
}()

// lookupCharset finds a charset by label, in any case; "" is not one.
func lookupCharset(label string) (charset, bool) {
	cs, ok := charsetLabels[strings.ToLower(strings.TrimSpace(label))]
	return cs, ok
}

// CharsetNames are the canonical names of the charsets the drop-in reads;
// SiteSettings.Charset also takes their other common labels (cp1251,
// koi8_r, …).
var CharsetNames = []string{utf8Charset.name, win1251Charset.name, koi8rCharset.name, iso88595.name}

// declaredCharset is the charset label a request declares: its
// Content-Type's charset parameter, else the _charset_ field browsers
// fill in, else "".
func declaredCharset(contentType string, params map[string]string) string {
	if _, mp, err := mime.ParseMediaType(contentType); err == nil && mp["charset"] != "" {
		return mp["charset"]
	}
	return params[paramCharset]
}

// valid reports whether s is text in cs: valid UTF-8, or no byte the
// single-byte charset leaves undefined.
func (cs charset) valid(s string) bool {
	if cs.cm == nil {
		return utf8.ValidString(s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf && cs.cm.DecodeByte(s[i]) == utf8.RuneError {
			return false
		}
	}
	return true
}

// decode returns s, in cs, as UTF-8 text; bytes that are not text in cs
// become U+FFFD.
func (cs charset) decode(s string) string {
	if cs.cm == nil {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] < utf8.RuneSelf
	}
	if ascii {
		return s // every charset here is ASCII-compatible
	}
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(cs.cm.DecodeByte(s[i]))
	}
	return b.String()
}

// encodeJSON re-encodes a JSON text from UTF-8 into cs. A character cs
// cannot hold (JSON puts them only in strings) becomes a \u escape, so the
// answer stays valid JSON and loses nothing.
func (cs charset) encodeJSON(js []byte) []byte {
	if cs.cm == nil {
		return js
	}
	var out bytes.Buffer
	out.Grow(len(js))
	for _, r := range string(js) {
		if b, ok := cs.cm.EncodeRune(r); ok {
			out.WriteByte(b)
			continue
		}
		for _, u := range utf16Units(r) {
			out.WriteString(`\u`)
			const hex = "0123456789abcdef"
			out.Write([]byte{hex[u>>12], hex[u>>8&15], hex[u>>4&15], hex[u&15]})
		}
	}
	return out.Bytes()
}

// utf16Units is r as JSON's \u escapes count it: one unit, or a surrogate
// pair outside the Basic Multilingual Plane.
func utf16Units(r rune) []uint16 {
	if r < 0x10000 {
		return []uint16{uint16(r)}
	}
	r -= 0x10000
	return []uint16{uint16(0xD800 + r>>10), uint16(0xDC00 + r&0x3FF)}
}

// hasUTF8Sequence reports whether s holds at least one valid multi-byte
// UTF-8 character: then text that is not valid UTF-8 is UTF-8 with damage
// (a value cut inside a character), not another charset.
func hasUTF8Sequence(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if n > 1 && r != utf8.RuneError {
			return true
		}
		i += n
	}
	return false
}

// guessCharset picks the single-byte charset that reads s as the most
// lower-case Cyrillic letters: running text is mostly lower case, and the
// three charsets put the lower-case letters at different bytes (1251 at
// E0–FF, KOI8-R at C0–DF, ISO-8859-5 at D0–EF).
func guessCharset(s string) charset {
	best, bestN := legacyCharsets[0], -1
	for _, cs := range legacyCharsets {
		n := 0
		for i := 0; i < len(s); i++ {
			if r := cs.cm.DecodeByte(s[i]); r >= 'а' && r <= 'я' || r == 'ё' {
				n++
			}
		}
		if n > bestN {
			best, bestN = cs, n
		}
	}
	return best
}

// reading is how the bytes of a drop-in request were read as text.
type reading struct {
	// cs is the charset the text was read in.
	cs charset
	// expected is the charset the request declared, else the site's.
	expected charset
	// invalid names the parameters whose bytes were not text in expected,
	// sorted; empty when all were.
	invalid []string
	// guessed is set when cs is a guess: the bytes were not UTF-8 and held
	// no UTF-8 character, so they are text in some single-byte charset.
	guessed bool
}

// readText decodes every parameter name and value of a drop-in request
// into UTF-8: in the charset the request declares (a label the drop-in
// does not know counts as none), else in the site's default, unless the
// bytes are UTF-8 holding non-ASCII characters (Cyrillic text in a
// single-byte charset practically never is: a site that moved to UTF-8
// keeps working under its old default). Bytes that are not text in that
// charset are read as well as can be: as the single-byte charset they
// look like when they hold no UTF-8 at all, else with U+FFFD in their
// place.
func readText(raw map[string]string, declared string, siteDefault charset) (map[string]string, reading) {
	rd := reading{expected: siteDefault}
	cs, isDeclared := lookupCharset(declared)
	if isDeclared {
		rd.expected = cs
	}
	var all strings.Builder
	utf8Seen, allUTF8 := false, true
	for k, v := range raw {
		all.WriteString(k)
		all.WriteString(v)
		utf8Seen = utf8Seen || hasUTF8Sequence(k) || hasUTF8Sequence(v)
		allUTF8 = allUTF8 && utf8.ValidString(k) && utf8.ValidString(v)
	}
	if !isDeclared && utf8Seen && allUTF8 {
		rd.expected = utf8Charset
	}
	rd.cs = rd.expected
	for k, v := range raw {
		if !rd.expected.valid(k) || !rd.expected.valid(v) {
			rd.invalid = append(rd.invalid, k)
		}
	}
	if len(rd.invalid) > 0 && rd.expected.cm == nil && !utf8Seen {
		rd.cs, rd.guessed = guessCharset(all.String()), true
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[rd.cs.decode(k)] = rd.cs.decode(v)
	}
	for i, k := range rd.invalid {
		rd.invalid[i] = shownName(rd.cs.decode(k))
	}
	slices.Sort(rd.invalid)
	return out, rd
}

// problem is the text that tells the site's developer what happened to
// bytes that were not text, or "" when there were none.
func (rd reading) problem(leadID string) string {
	if len(rd.invalid) == 0 {
		return ""
	}
	names := rd.invalid
	if len(names) > maxReported {
		names = names[:maxReported]
	}
	in := "the form's text is not valid " + rd.expected.name + " (in " + strings.Join(names, ", ") + ")"
	if rd.guessed {
		return in + "; it looks like " + rd.cs.name + ", and lead " + leadID + " was kept, read as " + rd.cs.name +
			". Declare the charset the form is sent in (Content-Type: application/x-www-form-urlencoded; charset=" + rd.cs.name +
			", or a hidden field _charset_), or have the site's charset set to " + rd.cs.name
	}
	return in + "; lead " + leadID + " was kept with those bytes shown as \uFFFD. Send the form in " + rd.expected.name +
		", or declare the charset it is sent in (Content-Type: …; charset=…, or a hidden field _charset_)"
}

// fieldErrors names each parameter whose bytes were not text, for an
// answer that refuses the lead for other reasons.
func (rd reading) fieldErrors() []lead.FieldError {
	problem := "not valid " + rd.expected.name
	if rd.guessed {
		problem += ", read as " + rd.cs.name
	}
	out := make([]lead.FieldError, len(rd.invalid))
	for i, name := range rd.invalid {
		out[i] = lead.FieldError{Field: name, Problem: problem}
	}
	return out
}
