package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
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
func decodeJSON(body []byte) (lead.Lead, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return lead.Lead{}, &DecodeError{Problem: "empty body: send a JSON object with the lead's fields"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return lead.Lead{}, syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return lead.Lead{}, &DecodeError{Problem: "body must be a JSON object"}
	}
	var l lead.Lead
	var hint string
	var bad []lead.FieldError
	seen := map[string]bool{}
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return lead.Lead{}, syntaxError(err)
		}
		name, _ := tok.(string)
		keyRaw := body[start:dec.InputOffset()]
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return lead.Lead{}, syntaxError(err)
		}
		shown := shownName(name)
		switch {
		case !utf8.Valid(keyRaw):
			bad = append(bad, lead.FieldError{Field: shown, Problem: "field name is not valid UTF-8"})
			continue
		case seen[name]:
			bad = append(bad, lead.FieldError{Field: shown, Problem: "appears more than once"})
			continue
		}
		seen[name] = true
		p := l.Field(name)
		if name == spamHintField {
			p = &hint
		}
		if p == nil {
			bad = append(bad, lead.FieldError{Field: shown, Problem: "unknown field"})
			continue
		}
		if problem := decodeString(raw, p); problem != "" {
			bad = append(bad, lead.FieldError{Field: name, Problem: problem})
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return lead.Lead{}, syntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return lead.Lead{}, &DecodeError{Problem: "unexpected data after the JSON object"}
	}
	l.Normalize()
	if hint = cleanHint(hint); utf8.RuneCountInString(hint) > MaxSpamHint {
		bad = append(bad, lead.FieldError{Field: spamHintField, Problem: fmt.Sprintf("too long: %d characters, at most %d", utf8.RuneCountInString(hint), MaxSpamHint)})
	}
	l.Description = withSpamHint(l.Description, hint)
	verr := l.Validate()
	if len(bad) == 0 {
		if verr != nil {
			return lead.Lead{}, verr
		}
		return l, nil
	}
	var ve *lead.ValidationError
	if errors.As(verr, &ve) {
		named := map[string]bool{}
		for _, f := range bad {
			named[f.Field] = true
		}
		for _, f := range ve.Fields {
			if !named[f.Field] {
				bad = append(bad, f)
			}
		}
	}
	return lead.Lead{}, &DecodeError{Problem: "invalid lead", Fields: capFields(bad)}
}

// decodeString stores a JSON string (or null, as empty) in p and returns ""
// or what is wrong with the value.
func decodeString(raw json.RawMessage, p *string) string {
	switch raw[0] {
	case '"':
		// encoding/json would quietly replace invalid UTF-8 with U+FFFD.
		if !utf8.Valid(raw) {
			return "not valid UTF-8"
		}
		if err := json.Unmarshal(raw, p); err != nil {
			return "not a valid JSON string"
		}
		return ""
	case 'n':
		return ""
	case '{':
		return "must be a string, not an object"
	case '[':
		return "must be a string, not an array"
	case 't', 'f':
		return "must be a string, not a boolean"
	default:
		return "must be a string, not a number"
	}
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Problem: "malformed JSON: unexpected end of body"}
	case errors.As(err, &se):
		return &DecodeError{Problem: fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())}
	}
	return &DecodeError{Problem: "malformed JSON: " + err.Error()}
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
