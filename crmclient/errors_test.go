package crmclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"leadrelay/delivery"
)

// classOutcome is what each class means to the worker: a reason's code
// must mean the same.
var classOutcome = map[Class]delivery.Outcome{
	ClassNone: delivery.None, ClassTransient: delivery.Transient, ClassAmbiguous: delivery.Uncertain,
	ClassAnswered: delivery.Uncertain, ClassPermanent: delivery.Final, ClassConfig: delivery.Paused,
	ClassRateLimited: delivery.Backpressure,
}

func TestClassify(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("worker: lead 7: %w", err) }
	tests := []struct {
		name string
		err  error
		want Class
		code delivery.Code
	}{
		{"nil", nil, ClassNone, ""},
		{"unknown error", errors.New("boom"), ClassPermanent, delivery.Unexpected},
		{"bare deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), ClassTransient, delivery.CRMUnreachable},
		{"bare cancel", context.Canceled, ClassTransient, delivery.CRMUnreachable},
		{"not found", fmt.Errorf("x: %w", ErrNotFound), ClassPermanent, delivery.CRMRefused},
		{"api 400", &APIError{Action: "add", Code: 400}, ClassConfig, delivery.ConfigAPIKey},
		{"api 401 wrapped", wrap(&APIError{Action: "list", Code: 401}), ClassConfig, delivery.ConfigLogin},
		{"api 402", &APIError{Action: "add", Code: 402}, ClassConfig, delivery.ConfigMethod},
		{"api 1", &APIError{Action: "add", Code: 1, Text: "Ошибка добавления лида. "}, ClassPermanent, delivery.CRMRejected},
		{"api v2 add failed", &APIError{Action: "add", Code: 401, Text: "Ошибка добавления заявки. "}, ClassPermanent, delivery.CRMRejected},
		{"api other", &APIError{Action: "info", Code: 500}, ClassPermanent, delivery.CRMRefused},
		{"status 429", &StatusError{Action: "add", StatusCode: 429}, ClassRateLimited, delivery.CRMRateLimited},
		{"status 408", &StatusError{Action: "add", StatusCode: 408}, ClassTransient, delivery.CRMUnreachable},
		{"status 500 add", wrap(&StatusError{Action: "add", StatusCode: 500}), ClassAnswered, delivery.CRMErrorPage},
		{"status 502 add", &StatusError{Action: "add", StatusCode: 502}, ClassAnswered, delivery.CRMErrorPage},
		{"status 504 add", &StatusError{Action: "add", StatusCode: 504}, ClassAmbiguous, delivery.CRMTimeout},
		{"status 503 add", &StatusError{Action: "add", StatusCode: 503}, ClassTransient, delivery.CRMUnreachable},
		{"status 500 info", &StatusError{Action: "info", StatusCode: 500}, ClassTransient, delivery.CRMUnreachable},
		{"status 502", &StatusError{Action: "list", StatusCode: 502}, ClassTransient, delivery.CRMUnreachable},
		{"status 404", &StatusError{Action: "add", StatusCode: 404}, ClassConfig, delivery.ConfigNotFound},
		{"status 403", &StatusError{Action: "add", StatusCode: 403}, ClassConfig, delivery.ConfigAccess},
		{"status 400", &StatusError{Action: "add", StatusCode: 400}, ClassConfig, delivery.ConfigHTTP},
		{"status 204 add", &StatusError{Action: "add", StatusCode: 204}, ClassAnswered, delivery.CRMErrorPage},
		{"status 204 list", &StatusError{Action: "list", StatusCode: 204}, ClassTransient, delivery.CRMUnexpected},
		{"decode add", &DecodeError{Action: "add", Snippet: "<b>Fatal error</b>: Call to undefined function"}, ClassAnswered, delivery.CRMErrorPage},
		{"decode list", &DecodeError{Action: "list", Snippet: "garbage"}, ClassTransient, delivery.CRMUnexpected},
		{"decode missing include", wrap(&DecodeError{Action: "add", Snippet: "<b>Fatal error</b>: require_once(): Failed opening required 'x.php'"}), ClassConfig, delivery.ConfigV1Broken},
		{"decode no such file", &DecodeError{Action: "info", Snippet: "Fatal error: include(): No such file or directory"}, ClassConfig, delivery.ConfigV1Broken},
		{"decode include without fatal", &DecodeError{Action: "add", Snippet: "include"}, ClassAnswered, delivery.CRMErrorPage},
		{"transport add sent", &TransportError{Action: "add", Sent: true, Err: errors.New("EOF")}, ClassAmbiguous, delivery.CRMTimeout},
		{"transport add not sent", &TransportError{Action: "add", Err: errors.New("refused")}, ClassTransient, delivery.CRMUnreachable},
		{"transport list sent", &TransportError{Action: "list", Sent: true, Err: context.DeadlineExceeded}, ClassTransient, delivery.CRMUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify = %v, want %v", got, tt.want)
			}
			d := Diagnose(tt.err)
			if d.Class != tt.want || d.Reason.Code != tt.code {
				t.Errorf("Diagnose = %v %s, want %v %s", d.Class, d.Reason.Code, tt.want, tt.code)
			}
			if want := classOutcome[d.Class]; d.Reason.Outcome() != want {
				t.Errorf("reason %s means %v, but class %v means %v", d.Reason.Code, d.Reason.Outcome(), d.Class, want)
			}
			if tt.err != nil && tt.err.Error() == "" {
				t.Error("empty error text")
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{&APIError{Action: "add", Code: 400, Text: "Не верный API key"}, "crmclient: add: CRM error 400: Не верный API key"},
		{&StatusError{Action: "list", StatusCode: 503, RetryAfter: time.Minute, Snippet: "busy"}, `crmclient: list: HTTP 503 Service Unavailable (retry after 1m0s): "busy"`},
		{&DecodeError{Action: "info", StatusCode: 200, ContentType: "text/html", Err: errors.New("not JSON"), Snippet: "<b>"}, `crmclient: info: unexpected answer (HTTP 200, text/html): not JSON: "<b>"`},
		{&TransportError{Action: "add", Sent: true, Err: errors.New("EOF")}, "crmclient: add: transport error (request sent): EOF"},
	}
	for _, tt := range tests {
		wantEqual(t, tt.err.Error(), tt.want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"30", 30 * time.Second},
		{" 7 ", 7 * time.Second},
		{"999999999", 24 * time.Hour},
		{now.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestStringers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ got, want string }{
		{ClassNone.String(), "none"},
		{ClassTransient.String(), "transient"},
		{ClassAmbiguous.String(), "ambiguous"},
		{ClassPermanent.String(), "permanent"},
		{ClassConfig.String(), "config"},
		{ClassAnswered.String(), "answered"},
		{ClassRateLimited.String(), "rate_limited"},
		{Class(9).String(), "Class(9)"},
		{StatusOpen.String(), "open"},
		{StatusInWork.String(), "in work"},
		{StatusProcessed.String(), "processed"},
		{StatusClosed.String(), "closed"},
		{Status(7).String(), "Status(7)"},
		{RezultNone.String(), "none"},
		{RezultSpam.String(), "spam"},
		{RezultDuplicate.String(), "duplicate"},
		{RezultOther.String(), "other"},
		{RezultNotTarget.String(), "not target"},
		{Rezult(-1).String(), "Rezult(-1)"},
		{parseDatum("2025-03-01 14:05:00", time.UTC).String(), "2025-03-01 14:05:00"},
	} {
		wantEqual(t, tt.got, tt.want)
	}
}

func TestDatumLocation(t *testing.T) {
	t.Parallel()
	msk := time.FixedZone("MSK", 3*3600)
	d := parseDatum("2025-03-01 14:05:00", msk)
	wantEqual(t, d.Time.UTC(), time.Date(2025, 3, 1, 11, 5, 0, 0, time.UTC))
	for _, raw := range []string{"", "0000-00-00 00:00:00", "0000-00-00", "yesterday"} {
		if d := parseDatum(raw, time.UTC); !d.Time.IsZero() || d.Raw != raw {
			t.Errorf("parseDatum(%q) = %+v", raw, d)
		}
	}
}

func TestFlexInt(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{`5`, 5, false}, {`"5"`, 5, false}, {`" 12 "`, 12, false}, {`""`, 0, false}, {`null`, 0, false},
		{`false`, 0, false}, {`true`, 1, false}, {`-3`, -3, false}, {`2.0`, 2, false}, {`"7.0"`, 7, false},
		{`2.5`, 0, true}, {`"abc"`, 0, true}, {`{}`, 0, true}, {`[]`, 0, true}, {`1e300`, 0, true},
	} {
		var n flexInt
		err := n.UnmarshalJSON([]byte(tt.in))
		if (err != nil) != tt.wantErr || (!tt.wantErr && int64(n) != tt.want) {
			t.Errorf("flexInt(%s) = %d, %v; want %d, err %v", tt.in, n, err, tt.want, tt.wantErr)
		}
	}
}

func TestFlexUIDs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want map[string]string
	}{
		{`null`, nil},
		{`[]`, nil},
		{`{}`, nil},
		{`{"a":"1","b":2}`, map[string]string{"a": "1", "b": "2"}},
		{`[{"name":"a","value":"1","eid":0},{"name":"b","value":2}]`, map[string]string{"a": "1", "b": "2"}},
		{`[{"a":"1"},{"b":"2"}]`, map[string]string{"a": "1", "b": "2"}},
	} {
		var u flexUIDs
		if err := u.UnmarshalJSON([]byte(tt.in)); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if len(u) != len(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.in, u, tt.want)
		}
		for k, v := range tt.want {
			if u[k] != v {
				t.Errorf("%s: got %v, want %v", tt.in, u, tt.want)
			}
		}
	}
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("ж", 300) // two bytes a rune
	s := snippet([]byte(long))
	if len(s) > snippetLen || !strings.HasPrefix(long, s) || !strings.HasSuffix(s, "ж") {
		t.Errorf("snippet cut badly: %d bytes", len(s))
	}
	wantEqual(t, snippet([]byte("  short\n")), "short")
	wantEqual(t, snippet([]byte{0xff, 'a'}), "\uFFFDa")
}

func TestSnippetCutsAtRune(t *testing.T) {
	t.Parallel()
	body := "a" + strings.Repeat("ж", 200) // "ж" straddles byte 200
	s := snippet([]byte(body))
	if !strings.HasPrefix(body, s) || len(s) != snippetLen-1 {
		t.Errorf("snippet %d bytes, prefix %v", len(s), strings.HasPrefix(body, s))
	}
}
