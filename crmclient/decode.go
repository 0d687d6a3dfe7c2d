package crmclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// snippetLen is how much of a bad body an error keeps for operators.
const snippetLen = 200

// top is a decoded answer: its top-level keys. A map, not a struct, because
// encoding/json matches struct fields case-insensitively and the v1 add
// failure carries both "error" (object) and "Error" (string).
type top map[string]json.RawMessage

// parseTop decodes the top level of an answer. PHP encodes an empty answer
// array as [], which is taken as an empty object.
func parseTop(body []byte) (top, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty body")
	}
	if trimmed[0] == '[' {
		var a []json.RawMessage
		if err := json.Unmarshal(trimmed, &a); err != nil {
			return nil, err
		}
		if len(a) != 0 {
			return nil, errors.New("top level is a non-empty array, want an object")
		}
		return top{}, nil
	}
	if trimmed[0] != '{' {
		return nil, errors.New("not JSON")
	}
	var t top
	if err := json.Unmarshal(trimmed, &t); err != nil {
		return nil, err
	}
	return t, nil
}

// has reports whether key is present and not null.
func (t top) has(key string) bool {
	raw, ok := t[key]
	return ok && !isNull(raw)
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// apiError returns the CRM's error in t, or nil when t is not an error.
// An "error" object, or "result":"Error", makes an error.
func (t top) apiError() (*APIError, error) {
	var e struct {
		Code flexInt    `json:"code"`
		Text flexString `json:"text"`
	}
	hasErr := false
	if raw, ok := t["error"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &e); err != nil {
			// {"error":"text"}: keep the text.
			var s flexString
			if json.Unmarshal(raw, &s) != nil {
				return nil, fmt.Errorf("error field: %w", err)
			}
			e.Text = s
		}
		hasErr = true
	}
	if raw, ok := t["result"]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil && strings.EqualFold(s, "Error") {
			hasErr = true
		}
	}
	if !hasErr {
		return nil, nil
	}
	text := string(e.Text)
	if text == "" {
		if raw, ok := t["Error"]; ok {
			var s flexString
			_ = json.Unmarshal(raw, &s)
			text = string(s)
		}
	}
	return &APIError{Code: int(e.Code), Text: text}, nil
}

// decodeAdd reads an add answer: v1 {"result":{"text":"Success","id":940}},
// v2 {"result":"Success","id":940}. Anything else without an id is a decode
// failure, never a success.
func decodeAdd(body []byte) (int64, *APIError, error) {
	t, err := parseTop(body)
	if err != nil {
		return 0, nil, err
	}
	if ae, err := t.apiError(); ae != nil || err != nil {
		return 0, ae, err
	}
	raw, ok := t["result"]
	if !ok {
		return 0, nil, errors.New("no result")
	}
	var (
		text string
		id   flexInt
	)
	switch raw = bytes.TrimSpace(raw); {
	case len(raw) > 0 && raw[0] == '{': // v1
		var r struct {
			Text flexString `json:"text"`
			ID   flexInt    `json:"id"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return 0, nil, fmt.Errorf("result: %w", err)
		}
		text, id = string(r.Text), r.ID
	default: // v2
		var s flexString
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, nil, fmt.Errorf("result: %w", err)
		}
		text = string(s)
		if rawID, ok := t["id"]; ok {
			if err := json.Unmarshal(rawID, &id); err != nil {
				return 0, nil, fmt.Errorf("id: %w", err)
			}
		}
	}
	if text != "Success" {
		return 0, nil, fmt.Errorf("result %q, want Success", text)
	}
	if id <= 0 {
		return 0, nil, errors.New("success without a lead id")
	}
	return int64(id), nil, nil
}

// decodeRows reads the rows of {"data":[…]}, or the CRM's error. A body
// that is PHP's empty array ([] or {}) has no rows; stat and list send it
// when nothing matches.
func decodeRows[T any](body []byte) ([]T, *APIError, error) {
	t, err := parseTop(body)
	if err != nil {
		return nil, nil, err
	}
	if ae, err := t.apiError(); ae != nil || err != nil {
		return nil, ae, err
	}
	if !t.has("data") {
		if len(t) == 0 {
			return nil, nil, nil
		}
		return nil, nil, errors.New("no data")
	}
	var rows []T
	if err := json.Unmarshal(t["data"], &rows); err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	return rows, nil, nil
}

// decodeStat reads {"data":[{"title"|"login":…,"open":…,"processed":…}]}.
func decodeStat(body []byte) ([]UserStat, *APIError, error) {
	rows, ae, err := decodeRows[wireUserStat](body) // PHP's [] for "no active users"
	if ae != nil || err != nil {
		return nil, ae, err
	}
	var out []UserStat
	for _, r := range rows {
		login := string(r.Login)
		if login == "" {
			login = string(r.Title)
		}
		out = append(out, UserStat{Login: login, InWork: int(r.Open), Processed: int(r.Processed)})
	}
	return out, nil, nil
}

// decodeInfo reads v1 {"result":{"data":{…},"id":"5"}}, the vendor page's
// {"data":{…}} and v2 {"data":{…},"id":5}. found is false for v2's stub
// answer to an unknown id (data without an id) and for empty data.
func decodeInfo(body []byte, loc *time.Location) (info LeadInfo, found bool, ae *APIError, err error) {
	t, err := parseTop(body)
	if err != nil {
		return LeadInfo{}, false, nil, err
	}
	if ae, err := t.apiError(); ae != nil || err != nil {
		return LeadInfo{}, false, ae, err
	}
	data, ok := t["data"]
	if raw, isObj := t["result"]; isObj && !ok {
		var r map[string]json.RawMessage
		if err := json.Unmarshal(raw, &r); err != nil {
			return LeadInfo{}, false, nil, fmt.Errorf("result: %w", err)
		}
		data, ok = r["data"]
	}
	if !ok {
		return LeadInfo{}, false, nil, errors.New("no data")
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return LeadInfo{}, false, nil, errors.New("empty data")
	}
	switch data[0] {
	case '{':
	case 'n', 'f', '[': // null, false, [] or a list: PHP's "nothing"
		var a []json.RawMessage
		if data[0] == '[' && (json.Unmarshal(data, &a) != nil || len(a) != 0) {
			return LeadInfo{}, false, nil, errors.New("data is a non-empty array, want an object")
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return LeadInfo{}, false, nil, fmt.Errorf("data: %w", err)
		}
		return LeadInfo{}, false, nil, nil
	default:
		return LeadInfo{}, false, nil, errors.New("data is not an object")
	}
	var w wireLeadInfo
	if err := json.Unmarshal(data, &w); err != nil {
		return LeadInfo{}, false, nil, fmt.Errorf("data: %w", err)
	}
	if w.ID <= 0 {
		return LeadInfo{}, false, nil, nil
	}
	return w.lead(loc), true, nil, nil
}

// decodeList reads {"data":[…]}. The CRM's 404 "Не найдено" comes back as
// an *APIError; List turns it into an empty page.
func decodeList(body []byte, loc *time.Location) ([]ListItem, *APIError, error) {
	rows, ae, err := decodeRows[wireListItem](body)
	if ae != nil || err != nil {
		return nil, ae, err
	}
	if len(rows) == 0 {
		return nil, nil, nil
	}
	out := make([]ListItem, len(rows))
	for i := range rows {
		out[i] = rows[i].item(loc)
	}
	return out, nil, nil
}

// snippet is the start of body with the API key removed, for an error.
// It redacts the whole body before it cuts: cut first, a key straddling
// the cut would leave its prefix behind, which no redaction then finds.
func (c *Client) snippet(body []byte) string {
	return snippet([]byte(c.redact(string(body))))
}

// snippet returns at most snippetLen bytes from the start of body, as valid
// UTF-8, for error messages.
func snippet(body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) > snippetLen {
		cut := snippetLen
		// Do not cut a rune in two.
		for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(b[cut]); i++ {
			cut--
		}
		b = b[:cut]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	for len(s) > snippetLen { // replacement runes are longer than bad bytes
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
