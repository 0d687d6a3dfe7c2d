package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hibiken/asynq"

	"leadrelay/crmclient"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	fatal := "<br />\n<b>Fatal error</b>: Uncaught Error: Failed opening required 'inc/class/Leads.php'"
	cfg := &crmclient.APIError{Action: "add", Code: 400, Text: "Не верный API key"}
	tests := []struct {
		name string
		err  error
		want Outcome
		fail bool // IsFailure(err)
	}{
		{"nil", nil, OutcomeNone, false},
		{"v1 add failed (code 1)", &crmclient.APIError{Action: "add", Code: 1, Text: "Ошибка добавления лида."}, OutcomeDead, true},
		{"v2 add failed (401 Ошибка добавления)", &crmclient.APIError{Action: "add", Code: 401, Text: "Ошибка добавления лида"}, OutcomeDead, true},
		{"wrong key 400", cfg, OutcomePause, true},
		{"unknown user 401", &crmclient.APIError{Action: "add", Code: 401, Text: "Неизвестный пользователь"}, OutcomePause, true},
		{"unknown method 402", &crmclient.APIError{Action: "add", Code: 402, Text: "Не известный метод"}, OutcomePause, true},
		{"other CRM code", &crmclient.APIError{Action: "add", Code: 7, Text: "?"}, OutcomeDead, true},
		{"not found", fmt.Errorf("info: %w", crmclient.ErrNotFound), OutcomeDead, true},
		{"HTTP 500 on add is ambiguous", &crmclient.StatusError{Action: "add", StatusCode: 500}, OutcomeAmbiguous, true},
		{"HTTP 500 on list", &crmclient.StatusError{Action: "list", StatusCode: 500}, OutcomeRetry, true},
		{"HTTP 503 retry-after", &crmclient.StatusError{Action: "add", StatusCode: 503, RetryAfter: 5}, OutcomeRetry, true},
		{"HTTP 408", &crmclient.StatusError{Action: "add", StatusCode: 408}, OutcomeRetry, true},
		{"HTTP 429 is backpressure", &crmclient.StatusError{Action: "add", StatusCode: 429}, OutcomeBackpressure, true},
		{"HTTP 502 on add is ambiguous", &crmclient.StatusError{Action: "add", StatusCode: 502}, OutcomeAmbiguous, true},
		{"HTTP 504 on add is ambiguous", &crmclient.StatusError{Action: "add", StatusCode: 504}, OutcomeAmbiguous, true},
		{"HTTP 502 on list", &crmclient.StatusError{Action: "list", StatusCode: 502}, OutcomeRetry, true},
		{"HTTP 404 wrong URL", &crmclient.StatusError{Action: "add", StatusCode: 404}, OutcomePause, true},
		{"HTTP 301 redirect", &crmclient.StatusError{Action: "add", StatusCode: 301, Location: "https://x"}, OutcomePause, true},
		{"HTTP 204 on add", &crmclient.StatusError{Action: "add", StatusCode: 204}, OutcomeAmbiguous, true},
		{"HTML on add", &crmclient.DecodeError{Action: "add", StatusCode: 200, Snippet: "<html>oops</html>", Err: io.ErrUnexpectedEOF}, OutcomeAmbiguous, true},
		{"HTML on list", &crmclient.DecodeError{Action: "list", StatusCode: 200, Snippet: "<html>", Err: io.ErrUnexpectedEOF}, OutcomeRetry, true},
		{"v1 missing include", &crmclient.DecodeError{Action: "add", StatusCode: 200, Snippet: fatal, Err: io.ErrUnexpectedEOF}, OutcomePause, true},
		{"transport sent add", &crmclient.TransportError{Action: "add", Sent: true, Err: context.DeadlineExceeded}, OutcomeAmbiguous, true},
		{"transport not sent add", &crmclient.TransportError{Action: "add", Err: io.EOF}, OutcomeRetry, true},
		{"transport sent list", &crmclient.TransportError{Action: "list", Sent: true, Err: io.EOF}, OutcomeRetry, true},
		{"wrapped ambiguous", fmt.Errorf("deliver: %w", &crmclient.TransportError{Action: "add", Sent: true, Err: io.EOF}), OutcomeAmbiguous, true},
		{"unknown error from add", errors.New("crmclient: add: empty uid name"), OutcomeDead, true},
		{"skip retry", fmt.Errorf("dead: x: %w", asynq.SkipRetry), OutcomeDead, true},
		{"delay", &DelayError{Reason: "circuit open"}, OutcomeBackpressure, false},
		{"wrapped delay", fmt.Errorf("x: %w", &DelayError{Reason: "busy"}), OutcomeBackpressure, false},
		{"delay for config", &DelayError{Reason: "config", Err: cfg}, OutcomePause, false},
		{"redis", storeErr("check delivered", errors.New("connection refused")), OutcomeRetry, true},
		{"unrecorded", &unrecordedError{crmID: 5, err: errors.New("redis down")}, OutcomeAmbiguous, true},
		{"reconcile transient", &reconcileError{&crmclient.StatusError{Action: "list", StatusCode: 503}}, OutcomeBackpressure, true},
		{"reconcile permanent never kills", &reconcileError{&crmclient.APIError{Action: "list", Code: 7}}, OutcomeBackpressure, true},
		{"reconcile config", &reconcileError{&crmclient.APIError{Action: "list", Code: 401}}, OutcomePause, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %v, want %v (crmclient class %v)", tc.err, got, tc.want, crmclient.Classify(tc.err))
			}
			if got := IsFailure(tc.err); got != tc.fail {
				t.Errorf("IsFailure(%v) = %v, want %v", tc.err, got, tc.fail)
			}
		})
	}
}
