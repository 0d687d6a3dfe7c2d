package intake

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"leadrelay/lead"
)

// DecodeError is a request body that is not a lead. Problem says what is
// wrong; Fields names each bad field when the fault lies in fields rather
// than in the body as a whole.
type DecodeError struct {
	Problem string
	Fields  []lead.FieldError
}

// Error joins the problem and the fields into one line.
func (e *DecodeError) Error() string {
	if len(e.Fields) == 0 {
		return e.Problem
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Problem
	}
	return e.Problem + ": " + strings.Join(parts, "; ")
}

// decodeJSON reads a lead from a JSON object of string fields with the lead's
// wire names and an optional spam_hint, which ends up as the description's
// last line (see withSpamHint). It reads strictly: unknown, repeated, non-string and nested fields,
// invalid UTF-8, and anything after the object are refused. The lead comes
// back normalized and valid; otherwise the error is a *DecodeError, or the
// *lead.ValidationError when only validation failed, naming every bad field.
//
// It reads the body once, byte by byte (encoding/json's Decoder read each
// value two or three times, a fifth of intake's CPU), and accepts and
// refuses what encoding/json does: the same grammar, invalid UTF-8 and
// bad surrogate escapes turned into U+FFFD, nesting up to 10,000 deep.
func decodeJSON(body []byte) (lead.Lead, error) {
	s := jsonScanner{b: body}
	if err := s.openObject(); err != nil {
		return lead.Lead{}, err
	}
	var l lead.Lead
	d := leadDecoding{l: &l}
	if err := s.members(&d); err != nil {
		return lead.Lead{}, err
	}
	s.space()
	if s.i != len(body) {
		return lead.Lead{}, &DecodeError{Problem: "unexpected data after the JSON object"}
	}
	return d.result()
}

// openObject reads past the '{' that opens the body's object; a body that
// is no object is skipped to tell a syntax error from a wrong type.
func (s *jsonScanner) openObject() error {
	s.space()
	if s.i == len(s.b) {
		return &DecodeError{Problem: "empty body: send a JSON object with the lead's fields"}
	}
	if s.b[s.i] != '{' {
		if err := s.skipValue(0); err != nil {
			return err
		}
		return &DecodeError{Problem: "body must be a JSON object"}
	}
	s.i++
	return nil
}

// members reads the object's name:value pairs into d, and its '}'.
func (s *jsonScanner) members(d *leadDecoding) error {
	s.space()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if err := s.member(d); err != nil {
			return err
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.unexpected("after object key:value pair")
		}
	}
}

// key reads an object member's name and the colon after it, and the space
// up to its value. valid is false when the name is not valid UTF-8.
func (s *jsonScanner) key() (name string, valid bool, err error) {
	if s.peek() != '"' {
		return "", false, s.unexpected("looking for beginning of object key string")
	}
	if name, valid, err = s.str(); err != nil {
		return "", false, err
	}
	s.space()
	if s.peek() != ':' {
		return "", false, s.unexpected("after object key")
	}
	s.i++
	s.space()
	return name, valid, nil
}

// member reads one name:value pair into d.
func (s *jsonScanner) member(d *leadDecoding) error {
	s.space()
	name, nameValid, err := s.key()
	if err != nil {
		return err
	}
	val, problem, err := s.fieldValue()
	if err != nil {
		return err
	}
	d.field(name, nameValid, val, problem)
	return nil
}

// leadDecoding is a lead as its fields are read, and what is wrong so far.
type leadDecoding struct {
	l         *lead.Lead
	hint      string
	bad       []lead.FieldError
	seenKnown uint64          // bit i: field i of the table seen; bit len(table): spam_hint
	seenOther map[string]bool // other names, made when the first one comes
}

// result is the lead normalized and valid, or a *DecodeError naming every
// bad field (or the *lead.ValidationError when only validation failed).
func (d *leadDecoding) result() (lead.Lead, error) {
	l := d.l
	l.Normalize()
	hint := cleanHint(d.hint)
	if n := utf8.RuneCountInString(hint); n > MaxSpamHint {
		d.bad = append(d.bad, lead.FieldError{Field: spamHintField, Problem: fmt.Sprintf("too long: %d characters, at most %d", n, MaxSpamHint)})
	}
	l.Description = withSpamHint(l.Description, hint)
	verr := l.Validate()
	if len(d.bad) == 0 {
		if verr != nil {
			return lead.Lead{}, verr
		}
		return *l, nil
	}
	var ve *lead.ValidationError
	if errors.As(verr, &ve) {
		d.addUnnamed(ve.Fields)
	}
	return lead.Lead{}, &DecodeError{Problem: "invalid lead", Fields: capFields(d.bad)}
}

// addUnnamed appends the fields' problems for fields not already named bad.
func (d *leadDecoding) addUnnamed(fields []lead.FieldError) {
	named := map[string]bool{}
	for _, f := range d.bad {
		named[f.Field] = true
	}
	for _, f := range fields {
		if !named[f.Field] {
			d.bad = append(d.bad, f)
		}
	}
}

// field stores one name:value pair in the lead (or the hint), or notes
// what is wrong with it. problem is what is wrong with the value ("" for a
// string or null; val is "" for null).
func (d *leadDecoding) field(name string, nameValid bool, val, problem string) {
	if !nameValid {
		d.bad = append(d.bad, lead.FieldError{Field: shownName(name), Problem: "field name is not valid UTF-8"})
		return
	}
	bit, known := fieldBits[name]
	if !known {
		d.other(name)
		return
	}
	if d.seenKnown&(1<<bit) != 0 {
		d.bad = append(d.bad, lead.FieldError{Field: name, Problem: "appears more than once"})
		return
	}
	d.seenKnown |= 1 << bit
	if problem != "" {
		d.bad = append(d.bad, lead.FieldError{Field: name, Problem: problem})
		return
	}
	if name == spamHintField {
		d.hint = val
	} else {
		*lead.Fields()[bit].Of(d.l) = val
	}
}

// other notes a name that is not a field: unknown, or repeated.
func (d *leadDecoding) other(name string) {
	if d.seenOther == nil {
		d.seenOther = map[string]bool{}
	}
	if d.seenOther[name] {
		d.bad = append(d.bad, lead.FieldError{Field: shownName(name), Problem: "appears more than once"})
		return
	}
	d.seenOther[name] = true
	d.bad = append(d.bad, lead.FieldError{Field: shownName(name), Problem: "unknown field"})
}

// fieldBits numbers the names decodeJSON takes: the table's rows, then
// the spam hint.
var fieldBits = func() map[string]int {
	m := map[string]int{}
	for i, f := range lead.Fields() {
		m[f.Name] = i
	}
	m[spamHintField] = len(m)
	return m
}()

// maxDepth is the deepest nesting accepted, as in encoding/json.
const maxDepth = 10000

// jsonScanner reads one JSON text from b, from offset i on.
type jsonScanner struct {
	b   []byte
	i   int
	buf []byte // scratch for strings with escapes
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// unexpected is the syntax error at the current byte (or the end).
func (s *jsonScanner) unexpected(context string) error {
	if s.i >= len(s.b) {
		return &DecodeError{Problem: "malformed JSON: unexpected end of body"}
	}
	return &DecodeError{Problem: fmt.Sprintf("malformed JSON at byte %d: invalid character %s %s", s.i+1, quoteChar(s.b[s.i]), context)}
}

func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c < 0x20 || c >= 0x7f:
		return fmt.Sprintf("%q", rune(c))
	}
	return "'" + string(rune(c)) + "'"
}

// fieldValue reads a field's value: a string (returned), null (""), or
// another value, skipped and described as the problem.
func (s *jsonScanner) fieldValue() (string, string, error) {
	switch c := s.peek(); {
	case c == '"':
		v, valid, err := s.str()
		if err != nil || valid {
			return v, "", err
		}
		return "", "not valid UTF-8", nil
	case c == 'n':
		return "", "", s.literal("null")
	case c == '{':
		return "", "must be a string, not an object", s.skipValue(0)
	case c == '[':
		return "", "must be a string, not an array", s.skipValue(0)
	case c == 't' || c == 'f':
		return "", "must be a string, not a boolean", s.skipValue(0)
	default:
		return "", "must be a string, not a number", s.skipValue(0)
	}
}

func (s *jsonScanner) literal(word string) error {
	for k := 0; k < len(word); k++ {
		if s.i >= len(s.b) || s.b[s.i] != word[k] {
			return s.unexpected("in literal " + word)
		}
		s.i++
	}
	return nil
}

// skipValue reads any JSON value without keeping it.
func (s *jsonScanner) skipValue(depth int) error {
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 'n':
		return s.literal("null")
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return &DecodeError{Problem: "malformed JSON: nested too deeply"}
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		s.space()
		if s.peek() == closer {
			s.i++
			return nil
		}
		for {
			s.space()
			if c == '{' {
				if _, _, err := s.key(); err != nil {
					return err
				}
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.space()
			switch s.peek() {
			case ',':
				s.i++
			case closer:
				s.i++
				return nil
			default:
				return s.unexpected("after a value in an object or array")
			}
		}
	}
	return s.unexpected("looking for beginning of value")
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *jsonScanner) number() error {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		digits()
	default:
		return s.unexpected("in numeric literal")
	}
	if s.peek() == '.' {
		s.i++
		if digits() == 0 {
			return s.unexpected("after decimal point in numeric literal")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if digits() == 0 {
			return s.unexpected("in exponent of numeric literal")
		}
	}
	return nil
}

// str reads a string at s.i (which holds '"'): its value, with invalid
// UTF-8 and bad surrogates replaced by U+FFFD as encoding/json does, and
// whether the raw bytes were valid UTF-8.
func (s *jsonScanner) str() (string, bool, error) {
	start := s.i + 1
	// Fast path: no escapes, no control characters, valid UTF-8.
	ascii := true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			raw := s.b[start:j]
			if ascii || utf8.Valid(raw) {
				s.i = j + 1
				return string(raw), true, nil
			}
			return s.escapedStr() // invalid UTF-8: replaced there
		case c == '\\' || c < 0x20:
			return s.escapedStr()
		case c >= 0x80:
			ascii = false
		}
	}
	return s.escapedStr()
}

// escapedStr reads a string at s.i rune by rune, unescaping into buf:
// the slow path of str.
func (s *jsonScanner) escapedStr() (string, bool, error) {
	s.buf = s.buf[:0]
	valid := true
	j := s.i + 1
	for j < len(s.b) {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return string(s.buf), valid, nil
		case c < 0x20:
			s.i = j
			return "", false, s.unexpected("in string literal")
		case c == '\\':
			var err error
			if j, err = s.escape(j); err != nil {
				return "", false, err
			}
		case c < utf8.RuneSelf:
			s.buf = append(s.buf, c)
			j++
		default:
			r, size := utf8.DecodeRune(s.b[j:])
			if r == utf8.RuneError && size == 1 {
				valid = false
			}
			s.buf = utf8.AppendRune(s.buf, r)
			j += size
		}
	}
	s.i = len(s.b)
	return "", false, s.unexpected("")
}

// escape appends the escape sequence at b[j] ('\\') to buf and returns the
// offset after it.
func (s *jsonScanner) escape(j int) (int, error) {
	if j+1 >= len(s.b) {
		s.i = len(s.b)
		return j, s.unexpected("")
	}
	switch e := s.b[j+1]; e {
	case '"', '\\', '/':
		s.buf = append(s.buf, e)
	case 'b':
		s.buf = append(s.buf, '\b')
	case 'f':
		s.buf = append(s.buf, '\f')
	case 'n':
		s.buf = append(s.buf, '\n')
	case 'r':
		s.buf = append(s.buf, '\r')
	case 't':
		s.buf = append(s.buf, '\t')
	case 'u':
		return s.unicodeEscape(j)
	default:
		s.i = j + 1
		return j, s.unexpected("in string escape code")
	}
	return j + 2, nil
}

// unicodeEscape appends the \uXXXX at b[j], joined with the low surrogate
// escape that follows a high one, or U+FFFD for a bad surrogate, as
// encoding/json does; it returns the offset after what it read.
func (s *jsonScanner) unicodeEscape(j int) (int, error) {
	r, ok := hex4(s.b, j+2)
	if !ok {
		s.i = min(j+2, len(s.b))
		for s.i < len(s.b) && s.i < j+6 && isHex(s.b[s.i]) {
			s.i++
		}
		return j, s.unexpected("in \\u hexadecimal character escape")
	}
	j += 6
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(s.b, j+2); ok && j+1 < len(s.b) && s.b[j] == '\\' && s.b[j+1] == 'u' {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				r = dec
				j += 6
			} else {
				r = utf8.RuneError
			}
		} else {
			r = utf8.RuneError
		}
	}
	s.buf = utf8.AppendRune(s.buf, r)
	return j, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// hex4 reads four hex digits at b[at:].
func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// shownName makes a field name fit to echo in an answer: valid UTF-8, short.
func shownName(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	if len(name) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + "…"
	}
	return name
}
