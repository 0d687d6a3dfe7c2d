package crmsim

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"leadrelay/internal/phpurl"
)

const maxBody = 1 << 20

// request is an API request after the CRM's own parameter handling.
type request struct {
	api      string
	params   map[string]string
	uids     map[string]string
	login    string
	apikey   string
	user     string // v1 only, decoded twice
	action   string
	jsonMode bool
	hasQuote bool // v1: a raw value holds ' (breaks the CRM's API log SQL)
}

func (rq *request) get(k string) string { return rq.params[k] }

// parseForm fills params like PHP's $_REQUEST (POST over GET) and collects
// PHP array parameters uids[name]=value.
func parseForm(r *http.Request) (map[string]string, map[string]string) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		_ = r.ParseMultipartForm(maxBody)
	} else {
		_ = r.ParseForm()
	}
	params := make(map[string]string, len(r.Form))
	var uids map[string]string
	next := 0
	for k, vs := range r.Form {
		if len(vs) == 0 {
			continue
		}
		v := vs[0] // r.Form lists POST values first, as PHP lets POST win
		if name, ok := strings.CutPrefix(k, "uids["); ok && strings.HasSuffix(name, "]") {
			name = strings.TrimSuffix(name, "]")
			if uids == nil {
				uids = map[string]string{}
			}
			if name == "" {
				name = strconv.Itoa(next)
				next++
			}
			uids[name] = v
			continue
		}
		params[k] = v
	}
	return params, uids
}

// parseV1 reads a v1 request: query or urlencoded POST alike, and login,
// apikey and user decoded a second time like the CRM's urldecode().
func parseV1(r *http.Request) *request {
	params, _ := parseForm(r)
	rq := &request{api: APIv1, params: params}
	rq.login = phpurl.Decode(params["login"])
	rq.apikey = phpurl.Decode(params["apikey"])
	rq.user = phpurl.Decode(params["user"])
	rq.action = params["action"]
	for _, v := range params {
		if strings.Contains(v, "'") {
			rq.hasQuote = true
			break
		}
	}
	return rq
}

// parseV2 reads a v2 request. JSON mode only when Content-Type is exactly
// "application/json" (then login/apikey may come as headers); anything else
// is form mode, where every value goes through the CRM's Cleaner.
func parseV2(r *http.Request) *request {
	rq := &request{api: APIv2}
	if r.Header.Get("Content-Type") == "application/json" {
		rq.jsonMode = true
		rq.params = map[string]string{}
		var body map[string]any
		b, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if json.Unmarshal(b, &body) == nil {
			for k, v := range body {
				if k == "uids" {
					if m, ok := v.(map[string]any); ok {
						rq.uids = make(map[string]string, len(m))
						for uk, uv := range m {
							rq.uids[uk] = phpString(uv)
						}
					}
					continue
				}
				rq.params[k] = phpString(v)
			}
		}
		_, hasKey := headerValue(r, "apikey")
		rq.apikey, _ = headerValue(r, "apikey")
		rq.login, _ = headerValue(r, "login")
		if !hasKey {
			if k, ok := body["apikey"]; ok && k != nil {
				rq.apikey, rq.login = phpString(k), rq.params["login"]
			}
		}
	} else {
		params, uids := parseForm(r)
		for k, v := range params {
			params[k] = cleaner(v)
		}
		for k, v := range uids {
			uids[k] = cleaner(v)
		}
		rq.params, rq.uids = params, uids
		rq.apikey, rq.login = params["apikey"], params["login"]
	}
	rq.action = rq.params["action"]
	return rq
}

func headerValue(r *http.Request, name string) (string, bool) {
	vs, ok := r.Header[http.CanonicalHeaderKey(name)]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// cleaner is v2's Cleaner(): trim, " -> ”, ' -> &acute;, and the literal
// four characters \n\r removed (a single-quoted PHP string).
func cleaner(s string) string {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\"'\\") {
		s = strings.NewReplacer(`"`, "”", `\n\r`, "", `'`, "&acute;").Replace(s)
	}
	return s
}

// phpString converts a decoded JSON value the way PHP would print it.
func phpString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "1"
		}
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// phpInt is PHP's (int) cast of a string: leading digits, else 0.
func phpInt(s string) int64 {
	s = strings.TrimSpace(s)
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.ParseInt(s[:end], 10, 64)
	return n
}
