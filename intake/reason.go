package intake

import (
	"strings"

	"leadrelay/producer"
)

// The reasons a site may read in a lead's last_error. They are short and
// stable; the delivery errors behind them name internal addresses, setting
// names and CRM texts, which stay with the operators (logs, ctl, /ops/dead).
const (
	ReasonCRMUnreachable = "CRM unreachable, retrying"
	ReasonCRMBusy        = "CRM busy, retrying"
	ReasonCRMUnexpected  = "unexpected CRM answer, retrying"
	ReasonPaused         = "delivery paused until an operator fixes the relay's CRM settings; the lead is kept"
	ReasonChecking       = "checking whether the CRM already has the lead"
	ReasonRelay          = "temporary relay problem, retrying"
	ReasonRetrying       = "delivery failed, retrying"
	ReasonRejected       = "the CRM rejected the lead; an operator will review it"
	ReasonGaveUp         = "delivery kept failing; an operator will review the lead"
)

// reasonClasses map words of a raw delivery error to a reason, first match
// wins. They match classes of failure, not whole sentences, so that the
// worker's wording may change without a site seeing internal text.
var reasonClasses = []struct {
	reason string
	words  []string
}{
	{ReasonPaused, []string{"configuration", "leadrelay_", "setting"}},
	{ReasonChecking, []string{"reconcil", "settle", "ambiguous", "not recorded", "may have stored", "unknown outcome"}},
	{ReasonCRMBusy, []string{"circuit", "slow down", "rate limit", "concurrency", "too many", "429", "retry-after", "another worker", "busy"}},
	{ReasonCRMUnreachable, []string{"transport", "unreachable", "connect", "dial", "timeout", "timed out", "deadline", "refused", "reset", "eof", "no such host", "tls", "http 5", "not answer", "no answer", "in time", "offline"}},
	{ReasonCRMUnexpected, []string{"unexpected", "decode", "not json", "html"}},
	{ReasonRelay, []string{"redis", "store", "limiter"}},
}

// rejectedWords mark a dead lead the CRM itself turned down.
var rejectedWords = []string{"dead:", "rejected", "crm error", "add failed", "ошибка"}

// siteReason is the one place that turns a lead's raw last error into what
// its site may read: "" when there is nothing to say, otherwise one of the
// Reason constants, chosen by the lead's state and by classes of words in
// raw. Unknown text gets the generic reason, never itself.
func siteReason(state, raw string) string {
	if raw == "" || state == producer.StateDelivered {
		return ""
	}
	low := strings.ToLower(raw)
	if state == producer.StateDead {
		if strings.Contains(low, "retries exhausted") {
			return ReasonGaveUp
		}
		for _, w := range rejectedWords {
			if strings.Contains(low, w) {
				return ReasonRejected
			}
		}
		return ReasonGaveUp
	}
	for _, c := range reasonClasses {
		for _, w := range c.words {
			if strings.Contains(low, w) {
				return c.reason
			}
		}
	}
	return ReasonRetrying
}
