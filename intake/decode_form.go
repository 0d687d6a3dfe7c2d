package intake

import (
	"bytes"
	"mime"
	"mime/multipart"
	"net/url"
	"sort"
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
	fields          map[string]string // lead fields, by wire name
	hints           map[string]string // spam hint fields, by name
	ignored         []string          // names of fields that are not forwarded
	droppedID       bool
	v2Named         map[string]string // values sent under a field's v2 name (clientpath), by that name
}

// Parameters a request may carry besides the lead's. Everything else (old
// sites send site, utm_referrer, clientpath, uids[…], submit, form_id,
// captcha answers, g-recaptcha-response, _token, agree, redirect…) is
// ignored and not forwarded. id is dropped on purpose: the CRM would turn
// the add into an update of lead id.
const (
	paramLogin  = "login"
	paramAPIKey = "apikey"
	paramAction = "action"
	paramID     = "id"
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
	return requestOf(params), nil
}

// requestOf sorts a request's parameters into credentials, lead fields,
// spam hints and ignored names.
func requestOf(params map[string]string) formRequest {
	rq := formRequest{fields: map[string]string{}, hints: map[string]string{}, action: params[paramAction]}
	rq.logins = decodeAgain(params[paramLogin])
	rq.apikeys = decodeAgain(params[paramAPIKey])
	var l lead.Lead
	for name, v := range params {
		switch {
		case name == paramLogin || name == paramAPIKey || name == paramAction:
		case name == paramID:
			rq.droppedID = true
		case v2Names[name] != "":
			if rq.v2Named == nil {
				rq.v2Named = map[string]string{}
			}
			rq.v2Named[name] = v
			rq.ignored = append(rq.ignored, name)
		case l.Field(name) != nil:
			if name == "user" {
				// The CRM decodes user twice too.
				v = decodeAgain(v)[0]
			}
			rq.fields[name] = v
		case contains(dropInHintFields, name):
			rq.hints[name] = v
		default:
			rq.ignored = append(rq.ignored, shownName(name))
		}
	}
	sort.Strings(rq.ignored)
	return rq
}

// lead builds the lead, normalized, and validates it. Non-empty spam hint
// fields become the description's last line, each cut to MaxSpamHint.
func (rq formRequest) lead() (lead.Lead, error) {
	var l lead.Lead
	for name, v := range rq.fields {
		if p := l.Field(name); p != nil {
			*p = v
		}
	}
	l.Normalize()
	var hints []string
	for _, name := range dropInHintFields {
		v := cutRunes(cleanHint(rq.hints[name]), MaxSpamHint)
		switch {
		case v == "":
		case name == spamHintField:
			hints = append(hints, v)
		default:
			hints = append(hints, name+"="+v)
		}
	}
	l.Description = withSpamHint(l.Description, strings.Join(hints, "; "))
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
