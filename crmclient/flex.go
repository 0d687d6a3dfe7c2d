package crmclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// scalar reads a JSON value the CRM may send for any scalar, as text: a
// string as its contents, a number as its digits, null and false as "",
// true as "1". what names the type wanted, for errors.
func scalar(b []byte, what string) (string, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("empty value for %s", what)
	case string(b) == "null", string(b) == "false":
		return "", nil
	case string(b) == "true":
		return "1", nil
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		return string(b), nil
	default:
		return "", fmt.Errorf("cannot read %.20q as %s", b, what)
	}
}

// flexInt decodes an integer the CRM sends as a JSON number, a string ("5",
// ""), null or a boolean (PHP's false for "nothing").
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s, err := scalar(b, "an integer")
	if err != nil {
		return err
	}
	return n.parse(strings.TrimSpace(s))
}

func (n *flexInt) parse(s string) error {
	if s == "" {
		*n = 0
		return nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = flexInt(i)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return fmt.Errorf("cannot read %.20q as an integer", s)
	}
	*n = flexInt(f)
	return nil
}

// flexString decodes a text the CRM sends as a JSON string, a number, null
// or a boolean.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	v, err := scalar(b, "a string")
	if err != nil {
		return err
	}
	*s = flexString(v)
	return nil
}

// flexUIDs decodes the uids of a lead. The CRM source lists them as rows,
// [{"name":"k","value":"v",...}]; a plain object {"k":"v"} and PHP's [] for
// "none" are accepted too.
type flexUIDs map[string]string

func (u *flexUIDs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return fmt.Errorf("empty value for uids")
	}
	switch b[0] {
	case 'n', 'f': // null, false
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*u = nil
		return nil
	case '{':
		var m map[string]flexString
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("uids: %w", err)
		}
		*u = nil
		for k, v := range m {
			u.set(k, string(v))
		}
		return nil
	case '[':
		var rows []map[string]json.RawMessage
		if err := json.Unmarshal(b, &rows); err != nil {
			return fmt.Errorf("uids: %w", err)
		}
		*u = nil
		for _, row := range rows {
			if name, ok := row["name"]; ok {
				var k, v flexString
				if err := json.Unmarshal(name, &k); err != nil {
					return fmt.Errorf("uids name: %w", err)
				}
				if raw, ok := row["value"]; ok {
					if err := json.Unmarshal(raw, &v); err != nil {
						return fmt.Errorf("uids value: %w", err)
					}
				}
				u.set(string(k), string(v))
				continue
			}
			for k, raw := range row {
				var v flexString
				if err := json.Unmarshal(raw, &v); err != nil {
					return fmt.Errorf("uids value: %w", err)
				}
				u.set(k, string(v))
			}
		}
		return nil
	default:
		return fmt.Errorf("cannot read %.20q as uids", b)
	}
}

func (u *flexUIDs) set(k, v string) {
	if *u == nil {
		*u = make(flexUIDs)
	}
	(*u)[k] = v
}
