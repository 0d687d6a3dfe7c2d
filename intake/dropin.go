package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"leadrelay/lead"
	"leadrelay/producer"
)

// The CRM's own texts (docs: /work/shared/salesman/README.md).
const (
	textWrongKey      = "Не верный API key"
	textUnknownUser   = "Неизвестный пользователь"
	textUnknownMethod = "Не известный метод"
	textAddFailed     = "Ошибка добавления лида. "
)

// dropIn serves GET|POST /developer/v1/leads like SalesMan's v1 leads API,
// action=add only: login is the site's name, apikey its key.
//
// Answers keep the CRM's shapes and its label Content-Type text/html, and,
// like the CRM, HTTP 200 for auth and lead errors: sites written for the CRM
// are mostly old PHP that reads only the body, so the body must say what
// happened. The exceptions are failures the CRM would not produce at all,
// answered in the add-failure shape with their own status: 503 (Redis down,
// with Retry-After), 413 and 400 (unreadable request), 405, 429 (rate limit,
// with Retry-After), 403 (Origin not on the site's list), 401 (signature
// missing or wrong) and 409 (signature replayed).
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
// applies: the same form sent twice is one lead.
func (h *handler) dropIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		note(r, "", "", "method_not_allowed")
		w.Header().Set("Allow", "GET, POST")
		writeCRM(w, http.StatusMethodNotAllowed, addFailure("method not allowed; use GET or POST"))
		return
	}
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		if body, err = readBody(w, r); err != nil {
			if isTooLarge(err) {
				note(r, "", "", "too_large")
				writeCRM(w, http.StatusRequestEntityTooLarge, addFailure("request larger than 64 KiB"))
				return
			}
			note(r, "", "", "bad_request")
			writeCRM(w, http.StatusBadRequest, addFailure("could not read the request"))
			return
		}
	}
	rq, err := parseForm(r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), body)
	if err != nil {
		note(r, "", "", "bad_request")
		writeCRM(w, http.StatusBadRequest, addFailure(err.Error()))
		return
	}
	site, ok := h.siteOf(rq.apikeys)
	if !ok {
		if h.throttledAuthFailure(w, r, answerCRM) {
			return
		}
		note(r, "", "", "unauthorized")
		writeCRM(w, http.StatusOK, crmError("400", textWrongKey))
		return
	}
	note(r, site, "", "")
	if !contains(rq.logins, site) {
		if h.throttledAuthFailure(w, r, answerCRM) {
			return
		}
		note(r, "", "", "unauthorized")
		writeCRM(w, http.StatusOK, crmError("401", textUnknownUser))
		return
	}
	if !h.admitSite(w, r, site, answerCRM) || !h.signedDropIn(w, r, site, body) {
		return
	}
	if rq.action != "add" {
		note(r, "", "", "unknown_action")
		writeCRM(w, http.StatusOK, crmError("402", textUnknownMethod))
		return
	}
	if ce := h.log.Check(zap.DebugLevel, "drop-in fields not forwarded"); ce != nil && (len(rq.ignored) > 0 || rq.droppedID) {
		ce.Write(zap.String("site", site), zap.Strings("ignored", rq.ignored), zap.Bool("dropped_id", rq.droppedID))
	}
	l, err := rq.lead()
	if err == nil {
		forget, ok := h.firstUse(w, r, site, answerCRM)
		if !ok {
			return
		}
		var rc producer.Receipt
		if rc, err = h.pub.Publish(r.Context(), site, l, ""); err != nil {
			forget()
		} else {
			outcome := "accepted"
			if rc.Duplicate {
				outcome = "duplicate"
			}
			note(r, "", rc.ID, outcome)
			writeCRM(w, http.StatusOK, crmSuccess{Result: crmAdded{Text: "Success", ID: rc.ID}})
			return
		}
	}
	var ve *lead.ValidationError
	switch {
	case errors.As(err, &ve):
		note(r, "", "", "invalid")
		writeCRM(w, http.StatusOK, addFailure(problems(ve.Fields)))
	case errors.Is(err, producer.ErrUnavailable):
		h.unavailable(w, r, err)
		writeCRM(w, http.StatusServiceUnavailable, addFailure("service temporarily unavailable, try again later"))
	default:
		note(r, "", "", "error")
		h.log.Error("intake failed", zap.Error(err))
		writeCRM(w, http.StatusInternalServerError, addFailure("internal error"))
	}
}

// siteOf tries every candidate decoding of the key; each lookup scans all keys.
func (h *handler) siteOf(keys []string) (string, bool) {
	site, found := "", false
	for _, k := range keys {
		if s, ok := h.keys.site(k); ok && !found {
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

// writeCRM answers like the CRM's v1: JSON labelled text/html. HTML-escaping
// stays on (a browser may render this label); JSON readers see no difference.
func writeCRM(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
