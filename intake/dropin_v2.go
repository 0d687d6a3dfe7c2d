package intake

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"

	"leadrelay/lead"
)

// dropInV2 serves GET|POST /developer/v2/lead like SalesMan's v2 lead API,
// action=add only, for sites integrated with v2: login is the site's name,
// apikey its key. Everything else is as on the v1 drop-in (dropIn): HTTP
// 200 for every answer, the API's status in HeaderStatus, Retry-After kept.
//
// Parameters come from the query and a form body, or, as the CRM takes
// them, from a JSON object with Content-Type application/json (login and
// apikey may then be headers). clientpath, v2's name of the source, becomes
// the lead's path; uids are not forwarded (the relay stamps its own).
//
//	success         {"result":"Success","id":"ld_…"}
//	wrong key       {"result":"Error","error":{"code":401,"text":"Неизвестный пользователь"}}
//	action not add  {"result":"Error","error":{"code":402,"text":"Не известный метод"}}
//	invalid lead    {"result":"Error","error":{"code":1,"text":"Ошибка добавления лида. …"}}
func (h *handler) dropInV2(w http.ResponseWriter, r *http.Request) {
	h.serveDropIn(w, r, dropInV2)
}

var dropInV2 = dialect{
	parse:       parseV2,
	contentType: "application/json; charset=utf-8",
	v2:          true,
	fail: func(problem string) any {
		return v2Error{Result: "Error", Error: v2Detail{Code: 1, Text: textAddFailed + problem}}
	},
	crmErr: func(code int, text string) any {
		return v2Error{Result: "Error", Error: v2Detail{Code: code, Text: text}}
	},
	success:      func(id string) any { return v2Success{Result: "Success", ID: id} },
	wrongKeyCode: 401, // the running v2 answers a wrong key like an unknown user
	wrongKeyText: textUnknownUser,
}

// v2's answers, fields in the CRM's order; v2 codes are numbers.
type (
	v2Success struct {
		Result string `json:"result"`
		ID     string `json:"id"` // the relay's lead id
	}
	v2Error struct {
		Result string   `json:"result"`
		Error  v2Detail `json:"error"`
	}
	v2Detail struct {
		Code int    `json:"code"`
		Text string `json:"text"`
	}
)

// v2Names maps the v2 API's own names of lead fields (clientpath, v1's
// path) to the fields' wire names.
var v2Names = func() map[string]string {
	m := map[string]string{}
	for _, f := range lead.Fields() {
		if f.CRM.V2 != "" && f.CRM.V2 != f.Name {
			m[f.CRM.V2] = f.Name
		}
	}
	return m
}()

// parseV2 reads a v2 request: a JSON object, or the query and form as v1.
func parseV2(r *http.Request, body []byte) (formRequest, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost || mt != "application/json" {
		return parseForm(r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), body)
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return formRequest{}, &DecodeError{Problem: "the body is not a JSON object"}
	}
	params := map[string]string{}
	for k, raw := range obj {
		var s string
		var n json.Number
		switch {
		case json.Unmarshal(raw, &s) == nil:
			params[k] = s
		case json.Unmarshal(raw, &n) == nil:
			params[k] = n.String()
		default:
			params[k] = "" // objects (uids), arrays, booleans: not lead text
		}
	}
	for _, name := range []string{paramLogin, paramAPIKey} {
		if params[name] == "" {
			params[name] = r.Header.Get(name)
		}
	}
	if params[paramAction] == "" {
		params[paramAction] = r.URL.Query().Get(paramAction)
	}
	rq := requestOf(params)
	rq.text = true // JSON is UTF-8; the decoder made it valid
	return rq, nil
}
