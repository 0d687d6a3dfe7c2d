package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"unicode/utf8"

	"leadrelay/lead"
)

// decodeJSONStdlib is the decoder decodeJSON replaced, built on
// encoding/json's Decoder: the oracle that the single-pass decoder must
// agree with. It reads the members its own way and settles the lead with
// decodeJSON's leadDecoding.result, the part the two share.
func decodeJSONStdlib(body []byte) (lead.Lead, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return lead.Lead{}, &DecodeError{Problem: "empty body: send a JSON object with the lead's fields"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return lead.Lead{}, stdlibSyntaxError(err)
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
			return lead.Lead{}, stdlibSyntaxError(err)
		}
		name, _ := tok.(string)
		keyRaw := body[start:dec.InputOffset()]
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return lead.Lead{}, stdlibSyntaxError(err)
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
		if problem := stdlibString(raw, p); problem != "" {
			bad = append(bad, lead.FieldError{Field: name, Problem: problem})
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return lead.Lead{}, stdlibSyntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return lead.Lead{}, &DecodeError{Problem: "unexpected data after the JSON object"}
	}
	// What follows the members is the same in both: settle the lead.
	d := leadDecoding{l: &l, hint: hint, bad: bad}
	return d.result()
}

// decodeString stores a JSON string (or null, as empty) in p and returns ""
// or what is wrong with the value.
func stdlibString(raw json.RawMessage, p *string) string {
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

func stdlibSyntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Problem: "malformed JSON: unexpected end of body"}
	case errors.As(err, &se):
		return &DecodeError{Problem: fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())}
	}
	return &DecodeError{Problem: "malformed JSON: " + err.Error()}
}

// sameDecoding reports how two decodings differ, or "". Syntax errors need
// not have the same text; field problems must be the same.
func sameDecoding(l1 lead.Lead, err1 error, l2 lead.Lead, err2 error) string {
	if l1 != l2 {
		return fmt.Sprintf("lead %+v, oracle %+v", l1, l2)
	}
	if (err1 == nil) != (err2 == nil) {
		return fmt.Sprintf("error %v, oracle %v", err1, err2)
	}
	if err1 == nil {
		return ""
	}
	if f1, f2 := problemFields(err1), problemFields(err2); !slices.Equal(f1, f2) {
		return fmt.Sprintf("fields %q, oracle %q (%v / %v)", f1, f2, err1, err2)
	}
	return ""
}

func problemFields(err error) []string {
	var de *DecodeError
	var ve *lead.ValidationError
	var out []string
	switch {
	case errors.As(err, &de):
		for _, f := range de.Fields {
			out = append(out, f.Field+": "+f.Problem)
		}
	case errors.As(err, &ve):
		for _, f := range ve.Fields {
			out = append(out, f.Field+": "+f.Problem)
		}
	}
	return out
}

// decodeCases are bodies where a hand-written JSON reader is easy to get
// wrong.
var decodeCases = []string{
	`{}`, ` {} `, `{"title":"Ann"}`, `{"title":"A\"n\\n\/\b\f\n\r\t"}`, `{"title":"\u00e9\u4e2d\ud83d\ude00"}`,
	`{"title":"\ud83d"}`, `{"title":"\ude00x"}`, `{"title":"\ud83d\u0041"}`, `{"title":"\ud83d\ud83d\ude00"}`,
	`{"title":"\u12"}`, `{"title":"\u12g4"}`, `{"title":"\x"}`, "{\"title\":\"a\nb\"}", "{\"title\":\"a\x00\"}",
	"{\"title\":\"\xff\"}", "{\"title\":\"\xc3\"}", "{\"ti\xfftle\":\"a\"}", "{\"title\":\"ok\", \"\xff\":1}",
	`{"title":"a",}`, `{"title":"a" "email":"b"}`, `{"title" "a"}`, `{"title":}`, `{"title":"a"`, `{"title":"a`, `{"title`, `{`, `}`,
	`{"title":-}`, `{"title":01}`, `{"title":1.}`, `{"title":1e}`, `{"title":-0.5e+7}`, `{"title":1E-2,"email":"a@b.cd"}`,
	`{"title":tru}`, `{"title":nul}`, `{"title":null}`, `{"title":false}`, `{"title":[1,[2,{"a":[]}]]}`, `{"title":[1,]}`,
	`{"title":{"a":1,"b":{}}}`, `{"title":{"a"}}`, `{"title":{1:2}}`, `{"title":"a","title":"b"}`, `{"x":1,"x":2,"title":"t"}`,
	`{"spam_hint":"h","spam_hint":"i","title":"t"}`, `[]`, `[`, `5`, `"x"`, `null`, `{"title":"a"} x`, `{"title":"a"}{}`,
	`{"title":"a"}  `, "\t\r\n{\"title\":\"a\"}", `{"Title":"x","phone":1,"city":{},"title":"a","title":"b","x":[]}`,
	`{"title":"a","email":"bad"}`, `{"email":"ann@example.com","description":"line\r\nline\u2028\u0000"}`, `{"title":""}`,
	`{"title" : "a" , "email" : null }`,
}

func TestDecodeJSONMatchesStdlib(t *testing.T) {
	t.Parallel()
	for _, body := range decodeCases {
		l1, err1 := decodeJSON([]byte(body))
		l2, err2 := decodeJSONStdlib([]byte(body))
		if d := sameDecoding(l1, err1, l2, err2); d != "" {
			t.Errorf("%q: %s", body, d)
		}
	}
}

// FuzzDecodeJSONMatchesStdlib holds the single-pass decoder to the
// encoding/json one on any input.
func FuzzDecodeJSONMatchesStdlib(f *testing.F) {
	for _, s := range decodeCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		l1, err1 := decodeJSON(body)
		l2, err2 := decodeJSONStdlib(body)
		if d := sameDecoding(l1, err1, l2, err2); d != "" {
			t.Fatalf("%q: %s", body, d)
		}
	})
}

// BenchmarkDecodeJSON compares the two decoders on a typical lead.
func BenchmarkDecodeJSON(b *testing.B) {
	body := []byte(`{"title":"Ann Lee","email":"ann@example.com","phone":"+79001234567","company":"Lee & Daughters","description":"Hello, please call me back about the flat on Green Street. Evenings are best.","utm_source":"google","utm_medium":"cpc","utm_campaign":"spring"}`)
	for _, d := range []struct {
		name string
		fn   func([]byte) (lead.Lead, error)
	}{{"single-pass", decodeJSON}, {"encoding-json", decodeJSONStdlib}} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := d.fn(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
