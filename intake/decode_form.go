package intake

import (
	"bytes"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"

	"leadrelay/internal/phpurl"
	"leadrelay/lead"
)

// formRequest is a SalesMan v1 request after the CRM's own parameter
// handling: every parameter read from the query or a form body alike, POST
// winning over GET, the last of repeated parameters winning, as PHP's
// $_REQUEST does.
type formRequest struct {
	// logins and apikeys hold the value decoded once and, like the CRM's
	// second urldecode(), twice: a site that double-encodes (as v1 needs)
	// and one that does not both authenticate.
	logins, apikeys []string
	action          string
	// params are the other parameters, by name, as sent: bytes in the
	// request's charset, which only the site's settings tell for sure.
	params map[string]string
	// declared is the charset label the request declares, "" for none.
	declared string
	// text is set when params are UTF-8 text already (a v2 JSON body).
	text bool
}

// The drop-in's own parameters. id is dropped on purpose: the CRM would
// turn the add into an update of lead id. _charset_ is the field browsers
// fill with the charset a form is sent in.
const (
	paramLogin   = "login"
	paramAPIKey  = "apikey"
	paramAction  = "action"
	paramID      = "id"
	paramCharset = "_charset_"
)

// parseForm reads a drop-in request from its query and, for a POST form
// (urlencoded or multipart), its body. Other bodies are ignored, as PHP
// ignores them. The error is a *DecodeError for a malformed multipart body
// or a file sent in place of a lead field.
func parseForm(method, rawQuery, contentType string, body []byte) (formRequest, error) {
	params := phpParseQuery(rawQuery)
	if method == "POST" {
		mt, mp, _ := mime.ParseMediaType(contentType)
		switch mt {
		case "application/x-www-form-urlencoded":
			for k, v := range phpParseQuery(string(body)) {
				params[k] = v
			}
		case "multipart/form-data":
			if err := parseMultipart(body, mp["boundary"], params); err != nil {
				return formRequest{}, err
			}
		}
	}
	rq := requestOf(params)
	if method == "POST" {
		rq.declared = declaredCharset(contentType, params)
	} else {
		rq.declared = params[paramCharset]
	}
	return rq, nil
}

// requestOf takes a request's credentials and action out of its
// parameters.
func requestOf(params map[string]string) formRequest {
	rq := formRequest{action: params[paramAction], params: params}
	rq.logins = decodeAgain(params[paramLogin])
	rq.apikeys = decodeAgain(params[paramAPIKey])
	delete(params, paramLogin)
	delete(params, paramAPIKey)
	delete(params, paramAction)
	return rq
}

// content reads the request's parameters as text, with the site's charset
// when the request declares none, and maps them to lead fields with the
// site's names (v2: clientpath is path too).
func (rq formRequest) content(f siteForm, v2 bool) (formContent, reading) {
	params, rd := rq.params, reading{cs: utf8Charset, expected: utf8Charset}
	if !rq.text {
		params, rd = readText(rq.params, rq.declared, f.charset)
	}
	return mapFields(params, f.fields, v2), rd
}

// lead builds the lead, normalized, and validates it. Extra fields become
// labelled lines after the description; non-empty spam hint fields its
// last line, each cut to MaxSpamHint.
func (fc formContent) lead() (lead.Lead, error) {
	var l lead.Lead
	for name, v := range fc.fields {
		if p := l.Field(name); p != nil {
			*p = v
		}
	}
	l.Normalize()
	if extra := extraLines(fc.extra); extra != "" {
		l.Description = strings.TrimSpace(l.Description + "\n" + extra)
	}
	var hints []string
	for _, name := range dropInHintFields {
		v := cutRunes(cleanHint(fc.hints[name]), MaxSpamHint)
		switch {
		case v == "":
		case name == spamHintField:
			hints = append(hints, v)
		default:
			hints = append(hints, name+"="+v)
		}
	}
	l.Description = withSpamHint(l.Description, strings.Join(hints, "; "))
	l.Normalize() // what was added above follows the fields' rules too
	if err := l.Validate(); err != nil {
		return lead.Lead{}, err
	}
	return l, nil
}

func parseMultipart(body []byte, boundary string, params map[string]string) error {
	if boundary == "" {
		return &DecodeError{Problem: "multipart body without a boundary"}
	}
	form, err := multipart.NewReader(bytes.NewReader(body), boundary).ReadForm(lead.MaxPayloadBytes)
	if err != nil {
		return &DecodeError{Problem: "malformed multipart body"}
	}
	defer func() { _ = form.RemoveAll() }()
	var l lead.Lead
	for name := range form.File {
		if l.Field(name) != nil || name == paramLogin || name == paramAPIKey || name == paramAction {
			return &DecodeError{Problem: "invalid lead", Fields: []lead.FieldError{{Field: name, Problem: "must be a text value, not a file"}}}
		}
	}
	for name, vs := range form.Value {
		if len(vs) > 0 {
			params[name] = vs[len(vs)-1]
		}
	}
	return nil
}

// phpParseQuery parses a query string like PHP: pairs split on '&' only,
// '+' is a space, a malformed %-escape is kept as it is, the last of
// repeated names wins. Go's url.ParseQuery would drop such pairs instead.
func phpParseQuery(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if k = phpurl.Decode(k); k != "" {
			out[k] = phpurl.Decode(v)
		}
	}
	return out
}

// decodeAgain returns v decoded a second time, like the CRM's urldecode(),
// then v itself when that differs; the once-decoded value alone when the
// second decoding fails.
func decodeAgain(v string) []string {
	twice, err := url.QueryUnescape(v)
	if err != nil || twice == v {
		return []string{v}
	}
	return []string{twice, v}
}
