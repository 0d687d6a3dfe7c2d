package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"leadrelay/lead"
	"leadrelay/producer"
)

// The CRM's own texts (docs: ../shared/salesman/README.md).
const (
	textWrongKey      = "Не верный API key"
	textUnknownUser   = "Неизвестный пользователь"
	textUnknownMethod = "Не известный метод"
	textAddFailed     = "Ошибка добавления лида. "
)

// dropIn serves GET|POST /developer/v1/leads like SalesMan's v1 leads API,
// action=add only: login is the site's name, apikey its key.
//
// Answers keep the CRM's shapes, its label Content-Type text/html and, like
// the CRM, HTTP 200 for every answer: sites written for the CRM are mostly
// old PHP that reads only the body, so the body must say what happened.
// Failures the CRM would not produce at all (Redis down, a request over
// 64 KiB, a rate limit, an Origin not on the site's list, a missing, wrong
// or replayed signature, a method other than GET and POST, a JSON body) come
// in the add-failure shape; the status the JSON API would have given is in
// HeaderStatus, and Retry-After is kept on 429 and 503.
//
// A site with a secret must POST and sign the raw body; its query may hold
// only login, apikey and action (signedDropIn).
//
//	success         {"result":{"text":"Success","id":"ld_…"}}
//	wrong key       {"result":"Error","error":{"code":"400","text":"Не верный API key"}}
//	login not site  {"result":"Error","error":{"code":"401","text":"Неизвестный пользователь"}}
//	action not add  {"result":"Error","error":{"code":"402","text":"Не известный метод"}}
//	invalid lead    {"error":{"code":"1","text":"Ошибка добавления лида. …"},"Error":"Ошибка добавления лида. …"}
//
// The success id is the relay's lead id, not a CRM id: delivery to the CRM is
// asynchronous and the CRM id does not exist yet. A site can follow the lead
// with GET /v1/leads/{id}. stat, info and list are not exposed to sites.
//
// No Idempotency-Key comes from these sites, so the producer's content hash
// applies for LEADRELAY_KEYLESS_WINDOW: the same form sent twice within it
// is one lead, and the answer to the repeat is the new lead's (Success,
// the id), as the CRM's own would be.
func (h *handler) dropIn(w http.ResponseWriter, r *http.Request) {
	h.serveDropIn(w, r, dropInV1)
}

// HeaderStatus carries, on drop-in answers (always HTTP 200, as the CRM
// answers), the status the JSON API would have given: 413, 429, 503…
const HeaderStatus = "X-LeadRelay-Status"

// dialect is one SalesMan API version as the drop-in speaks it.
type dialect struct {
	// parse reads the request's parameters.
	parse func(r *http.Request, body []byte) (formRequest, error)
	// contentType labels the version's answers (charset utf-8).
	contentType string
	// v2 is set for v2, which takes clientpath as the source's name.
	v2 bool
	// fail is the add-failure body for a problem.
	fail func(problem string) any
	// crmErr is the CRM's error body for code and text.
	crmErr func(code int, text string) any
	// success is the success body for the relay's lead id.
	success func(id string) any
	// wrongKey is the code and text the version answers a wrong key with.
	wrongKeyCode int
	wrongKeyText string
}

// write answers v in the version's shape and label.
func (d dialect) write(w http.ResponseWriter, status int, v any) {
	writeCRMAs(w, status, d.contentType, v)
}

// answer writes a problem in the dialect's add-failure shape.
func (d dialect) answer(w http.ResponseWriter, status int, problem string) {
	d.write(w, status, d.fail(problem))
}

// answerIn writes a problem in the dialect's add-failure shape, in cs:
// the charset the site's own pages are in, for a human to read there.
func (d dialect) answerIn(w http.ResponseWriter, status int, cs charset, problem string) {
	writeCRMIn(w, status, d.contentType, cs, d.fail(problem))
}

var dropInV1 = dialect{
	parse: func(r *http.Request, body []byte) (formRequest, error) {
		if isJSONBody(r, body) {
			return formRequest{}, &DecodeError{Problem: jsonBodyProblem}
		}
		return parseForm(r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), body)
	},
	contentType:  "text/html; charset=utf-8",
	fail:         func(problem string) any { return addFailure(problem) },
	crmErr:       func(code int, text string) any { return crmError(strconv.Itoa(code), text) },
	success:      func(id string) any { return crmSuccess{Result: crmAdded{Text: "Success", ID: id}} },
	wrongKeyCode: 400,
	wrongKeyText: textWrongKey,
}

// jsonBodyProblem is the answer to a JSON body where the API reads forms:
// the CRM would ignore the body and answer "wrong API key", which sends the
// site's developer looking for the wrong fault.
const jsonBodyProblem = "the body is JSON, but this endpoint reads form fields " +
	"(application/x-www-form-urlencoded or multipart/form-data), as SalesMan's v1 API does; " +
	"send JSON to POST /v1/leads or /developer/v2/lead with Content-Type: application/json"

// isJSONBody reports whether a POST carries JSON: by its Content-Type, or
// by a body that opens like a JSON object with no form type given.
func isJSONBody(r *http.Request, body []byte) bool {
	if r.Method != http.MethodPost {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return true
	case mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data":
		return false
	}
	t := bytes.TrimSpace(body)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// serveDropIn is the drop-in flow shared by v1 and v2.
func (h *handler) serveDropIn(w http.ResponseWriter, r *http.Request, d dialect) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		note(r, "", "", "method_not_allowed")
		w.Header().Set("Allow", "GET, POST")
		d.answer(w, http.StatusMethodNotAllowed, "method not allowed; use GET or POST")
		return
	}
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		if body, err = readBody(w, r); err != nil {
			if isTooLarge(err) {
				note(r, "", "", "too_large")
				d.answer(w, http.StatusRequestEntityTooLarge, "request larger than 64 KiB")
				return
			}
			note(r, "", "", "bad_request")
			d.answer(w, http.StatusBadRequest, "could not read the request")
			return
		}
	}
	rq, err := d.parse(r, body)
	if err != nil {
		note(r, "", "", "bad_request")
		d.answer(w, http.StatusBadRequest, err.Error())
		return
	}
	site, ok := h.siteOf(r, rq.apikeys)
	if !ok {
		if h.throttledAuthFailure(w, r, d.answer) {
			return
		}
		note(r, "", "", "unauthorized")
		d.write(w, http.StatusOK, d.crmErr(d.wrongKeyCode, d.wrongKeyText))
		return
	}
	note(r, site, "", "")
	if !contains(rq.logins, site) {
		if h.throttledAuthFailure(w, r, d.answer) {
			return
		}
		note(r, "", "", "unauthorized")
		d.write(w, http.StatusOK, d.crmErr(401, textUnknownUser))
		return
	}
	if !h.admitSite(w, r, site, d.answer) || !h.signedDropIn(w, r, site, body) {
		return
	}
	if rq.action != "add" {
		note(r, "", "", "unknown_action")
		d.write(w, http.StatusOK, d.crmErr(402, textUnknownMethod))
		return
	}
	h.addFromForm(w, r, d, site, rq)
}

// addFromForm reads the lead of an authenticated drop-in add with the
// site's settings and publishes it.
//
// Bytes that are not text in the charset the request declares (or the
// site's) never cost the lead: it is kept, read as well as can be (see
// readText), counted (Observer.Undecodable) and logged, and the answer is
// the add-failure shape in the charset the text was read in, saying so,
// for the site's developer to fix the form. That answer is HTTP 200, with
// 202 (accepted) in HeaderStatus, like every drop-in answer: an HTTP error
// status would not reach a script that never reads the answer, and one
// that does reads the body.
func (h *handler) addFromForm(w http.ResponseWriter, r *http.Request, d dialect, site string, rq formRequest) {
	f := h.form(r, site)
	fc, rd := rq.content(f, d.v2)
	if ce := h.log.Check(zap.DebugLevel, "drop-in fields not forwarded"); ce != nil && (len(fc.ignored) > 0 || fc.droppedID) {
		ce.Write(zap.String("site", site), zap.Strings("ignored", fc.ignored), zap.Bool("dropped_id", fc.droppedID))
	}
	h.unmapped.saw(site, fc.extra)
	if len(rd.invalid) > 0 {
		h.undecodable(site, rd)
	}
	l, err := fc.lead()
	if err == nil {
		if !h.roomFor(w, r, site, 1, d.answer) {
			return
		}
		forget, ok := h.firstUse(w, r, site, d.answer)
		if !ok {
			return
		}
		var rc producer.Receipt
		if rc, err = h.pub.Publish(r.Context(), site, l, ""); err != nil {
			if producer.NothingStored(err) {
				forget()
			}
		} else {
			outcome := "accepted"
			if rc.Duplicate {
				outcome = "duplicate"
			}
			note(r, "", rc.ID, outcome)
			if problem := rd.problem(rc.ID); problem != "" {
				d.answerIn(w, http.StatusAccepted, rd.cs, problem)
				return
			}
			d.write(w, http.StatusOK, d.success(rc.ID))
			return
		}
	}
	var ve *lead.ValidationError
	if errors.As(err, &ve) && len(rd.invalid) > 0 {
		note(r, "", "", "invalid")
		d.answerIn(w, http.StatusOK, rd.cs, problems(append(rd.fieldErrors(), ve.Fields...)))
		return
	}
	h.dropInFailed(w, r, d, err)
}

// undecodable counts and logs a request whose bytes were not all text:
// names and charsets only, never values.
func (h *handler) undecodable(site string, rd reading) {
	if h.obs != nil {
		h.obs.Undecodable(site)
	}
	h.log.Info("drop-in: text not valid in its charset; the lead is kept, read as shown",
		zap.String("site", site), zap.String("charset", rd.expected.name), zap.String("read_as", rd.cs.name),
		zap.Bool("guessed", rd.guessed), zap.Strings("fields", rd.invalid))
}

// dropInFailed answers a drop-in add that published nothing.
func (h *handler) dropInFailed(w http.ResponseWriter, r *http.Request, d dialect, err error) {
	var ve *lead.ValidationError
	switch {
	case errors.As(err, &ve):
		note(r, "", "", "invalid")
		d.answer(w, http.StatusOK, problems(ve.Fields))
	case h.backlogFull(w, r, err, d.answer):
	case errors.Is(err, producer.ErrKeyReused):
		note(r, "", "", "key_reused")
		d.answer(w, http.StatusOK, keyReusedText(""))
	case errors.Is(err, producer.ErrUnavailable):
		h.unavailable(w, r, err)
		d.answer(w, http.StatusServiceUnavailable, "service temporarily unavailable, try again later")
	default:
		note(r, "", "", "error")
		h.log.Error("intake failed", zap.Error(err))
		d.answer(w, http.StatusInternalServerError, "internal error")
	}
}

// siteOf tries every candidate decoding of the key; each lookup scans all keys.
func (h *handler) siteOf(r *http.Request, keys []string) (string, bool) {
	site, found := "", false
	ring := h.sites(r).keys
	for _, k := range keys {
		if s, ok := ring.site(k); ok && !found {
			site, found = s, true
		}
	}
	return site, found
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// The CRM's answers, fields in the CRM's order.
type (
	crmSuccess struct {
		Result crmAdded `json:"result"`
	}
	crmAdded struct {
		Text string `json:"text"`
		ID   string `json:"id"` // the relay's lead id
	}
	crmErrorBody struct {
		Result string    `json:"result"`
		Error  crmDetail `json:"error"`
	}
	crmDetail struct {
		Code string `json:"code"`
		Text string `json:"text"`
	}
	crmAddFailure struct {
		Error     crmDetail `json:"error"`
		ErrorText string    `json:"Error"`
	}
)

func crmError(code, text string) crmErrorBody {
	return crmErrorBody{Result: "Error", Error: crmDetail{Code: code, Text: text}}
}

// addFailure is the CRM's add-failure shape. The real CRM repeats the whole
// text in "Error", prefix included (crmclient/testdata/v1_add_fail.json).
func addFailure(problem string) crmAddFailure {
	text := textAddFailed + problem
	return crmAddFailure{Error: crmDetail{Code: "1", Text: text}, ErrorText: text}
}

func problems(fs []lead.FieldError) string {
	fs = capFields(fs)
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Field + ": " + f.Problem
	}
	return strings.Join(parts, "; ")
}

// writeCRM answers like the CRM's v1 (text/html, UTF-8).
func writeCRM(w http.ResponseWriter, status int, v any) {
	writeCRMAs(w, status, dropInV1.contentType, v)
}

// writeCRMAs answers like the CRM: JSON under the version's label, HTTP
// 200 whatever happened (status goes to HeaderStatus when it is not 200).
// HTML-escaping stays on under text/html (a browser may render this
// label); JSON readers see no difference.
func writeCRMAs(w http.ResponseWriter, status int, contentType string, v any) {
	writeCRMIn(w, status, contentType, utf8Charset, v)
}

// writeCRMIn is writeCRMAs with the body in cs, labelled so.
func writeCRMIn(w http.ResponseWriter, status int, contentType string, cs charset, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(strings.HasPrefix(contentType, "text/html")) // only where a browser may render it
	_ = enc.Encode(v)
	hd := w.Header()
	hd.Set("Content-Type", strings.Replace(contentType, "charset=utf-8", "charset="+cs.name, 1))
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	if status != http.StatusOK {
		hd.Set(HeaderStatus, strconv.Itoa(status))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(cs.encodeJSON(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))))
}
