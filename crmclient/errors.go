package crmclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"leadrelay/delivery"
)

// ErrNotFound is matched (errors.Is) by the error Info returns for an id the
// CRM does not know.
var ErrNotFound = errors.New("crmclient: lead not found")

// ErrBodyTooLarge is wrapped by a DecodeError when an answer is larger than
// the client is willing to read.
var ErrBodyTooLarge = errors.New("response body too large")

// ErrPagingIgnored is returned by Walk when the CRM answers a later page with
// the same leads as the page before: the v1 list of current SalesMan releases
// ignores offset and always returns the newest PageSize leads.
var ErrPagingIgnored = errors.New("crmclient: the CRM ignored the list offset (v1 list returns only the newest 200 leads)")

// APIError is the CRM's own error answer, {"result":"Error","error":{...}}
// (or, for a failed v1 add, {"error":{"code":"1",...},"Error":"..."}).
type APIError struct {
	// Action is the API action: add, stat, info or list.
	Action string
	// Code is the CRM's error code: 400 wrong API key, 401 unknown user
	// (v2 also: wrong key), 402 unknown method, 404 nothing found, 1 v1 add
	// failed.
	Code int
	// Text is the CRM's message, in Russian.
	Text string
}

// Error returns "crmclient: <action>: CRM error <code>: <text>".
func (e *APIError) Error() string {
	return fmt.Sprintf("crmclient: %s: CRM error %d: %s", e.Action, e.Code, e.Text)
}

// addFailed reports whether the CRM says it could not insert the lead: code 1
// on v1, code 401 with "Ошибка добавления" on v2 (which reuses the code of
// "unknown user").
func (e *APIError) addFailed() bool {
	return e.Code == 1 || e.Action == actionAdd && strings.HasPrefix(e.Text, "Ошибка добавления")
}

// StatusError reports an HTTP status other than 200. The CRM itself always
// answers 200, so this comes from the web server or a proxy in front of it,
// or from a PHP fatal error with display_errors off (500, empty body).
type StatusError struct {
	// Action is the API action: add, stat, info or list.
	Action string
	// StatusCode is the HTTP status.
	StatusCode int
	// Snippet is the start of the body (about 200 bytes), for operators.
	Snippet string
	// RetryAfter is the parsed Retry-After header; zero when absent.
	RetryAfter time.Duration
	// Location is the Location header of a redirect, which the client does
	// not follow.
	Location string
}

// Error describes the status, the requested delay and the body's start.
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "crmclient: %s: HTTP %d %s", e.Action, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Location != "" {
		fmt.Fprintf(&b, " (redirect to %s)", e.Location)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Snippet != "" {
		fmt.Fprintf(&b, ": %q", e.Snippet)
	}
	return b.String()
}

// DecodeError reports an HTTP 200 answer that is not the expected JSON: a
// PHP error page, a truncated or oversized body, a success without an id.
// Such an answer is never taken as success.
type DecodeError struct {
	// Action is the API action: add, stat, info or list.
	Action string
	// StatusCode is the HTTP status (200).
	StatusCode int
	// ContentType is the Content-Type header of the answer.
	ContentType string
	// Snippet is the start of the body (about 200 bytes), for operators.
	Snippet string
	// Err says what was wrong; it may be ErrBodyTooLarge or a json error.
	Err error

	// missingInclude is set when the whole body, not just the snippet,
	// holds the PHP fatal error of a missing include file.
	missingInclude bool
}

// Error describes what was wrong with the answer and quotes its start.
func (e *DecodeError) Error() string {
	s := fmt.Sprintf("crmclient: %s: unexpected answer (HTTP %d, %s): %v", e.Action, e.StatusCode, e.ContentType, e.Err)
	if e.Snippet != "" {
		s += fmt.Sprintf(": %q", e.Snippet)
	}
	return s
}

// Unwrap returns Err.
func (e *DecodeError) Unwrap() error { return e.Err }

// MissingInclude reports whether the answer is the PHP fatal error of a file
// the CRM fails to include, which is how v1 add and info fail on current
// SalesMan releases.
func (e *DecodeError) MissingInclude() bool {
	return e.missingInclude || looksLikeMissingInclude(e.Snippet)
}

// TransportError reports that no HTTP answer was received: dial, DNS, TLS,
// reset, timeout, cancelled context, or a body cut off while reading.
type TransportError struct {
	// Action is the API action: add, stat, info or list.
	Action string
	// Sent is true when the request was fully written, so the CRM may have
	// acted on it.
	Sent bool
	// Err is the cause. When the caller's context is done it is ctx.Err(),
	// so errors.Is(err, context.Canceled) works.
	Err error
}

// Error says whether the request was sent and why it failed.
func (e *TransportError) Error() string {
	sent := "not sent"
	if e.Sent {
		sent = "sent"
	}
	return fmt.Sprintf("crmclient: %s: transport error (request %s): %v", e.Action, sent, e.Err)
}

// Unwrap returns Err.
func (e *TransportError) Unwrap() error { return e.Err }

// Class says what a caller should do about an error. Diagnose is the one
// table that maps every failure of a CRM call to a class and a reason;
// callers map them to what they do, nothing else.
type Class int

// The classes Classify returns.
const (
	// ClassNone: no error.
	ClassNone Class = iota
	// ClassTransient: nothing happened at the CRM, or it was a read; retry
	// later.
	ClassTransient
	// ClassAmbiguous: an add may or may not have stored the lead, and the
	// CRM's server may still be working on it (a timeout or a connection
	// lost after the request was sent, a gateway timeout). Look the lead up
	// only once that request cannot commit any more.
	ClassAmbiguous
	// ClassPermanent: retrying the same request will fail the same way.
	ClassPermanent
	// ClassConfig: the client's configuration is wrong (URL, login, key,
	// API version); every request will fail until an operator fixes it.
	// Diagnose's reason says what to fix.
	ClassConfig
	// ClassAnswered: an add got a complete answer that does not say whether
	// the lead was stored (HTTP 500 or 502, or a 200 PHP error page): the
	// CRM's request is over, so nothing can still commit and the lead can
	// be looked up at once. The CRM does not de-duplicate, so a blind retry
	// may create a second lead.
	ClassAnswered
	// ClassRateLimited: the CRM or a proxy asked to slow down (HTTP 429);
	// retry after RetryAfter without counting a failure.
	ClassRateLimited
)

// Uncertain reports whether the class leaves open whether an add stored
// the lead.
func (c Class) Uncertain() bool { return c == ClassAmbiguous || c == ClassAnswered }

// String returns the class name in lower case, e.g. "transient".
func (c Class) String() string { return enumName("Class", classNames, c) }

var classNames = []string{
	ClassNone: "none", ClassTransient: "transient", ClassAmbiguous: "ambiguous", ClassPermanent: "permanent",
	ClassConfig: "config", ClassAnswered: "answered", ClassRateLimited: "rate_limited",
}

// Diagnosis is what a failed CRM call means: what a caller should do
// (Class) and why, as data (Reason; a configuration problem's code names,
// through package delivery's table, the setting an operator must fix).
type Diagnosis struct {
	// Class says what to do about the error.
	Class Class
	// Reason says why, with the CRM's code, the HTTP status and the CRM's
	// own text (for operators only) where there are some.
	Reason delivery.Reason
}

// Classify decides what err means for a caller that may retry: it is
// Diagnose(err).Class.
func Classify(err error) Class { return Diagnose(err).Class }

// Diagnose is the one table that maps every failure of a CRM call to a
// class and a reason. It looks through wrapping (errors.As/errors.Is).
// Errors this package does not produce, such as invalid arguments, are
// ClassPermanent with delivery.Unexpected. nil is ClassNone with no
// reason.
func Diagnose(err error) Diagnosis {
	if err == nil {
		return Diagnosis{}
	}
	var (
		ae *APIError
		se *StatusError
		de *DecodeError
		te *TransportError
	)
	switch {
	case errors.Is(err, ErrNotFound):
		return Diagnosis{ClassPermanent, delivery.Reason{Code: delivery.CRMRefused, Detail: "lead not found"}}
	case errors.As(err, &ae):
		return diagnoseAPI(ae)
	case errors.As(err, &se):
		return diagnoseStatus(se)
	case errors.As(err, &de):
		switch {
		case de.MissingInclude():
			return Diagnosis{ClassConfig, delivery.Reason{Code: delivery.ConfigV1Broken}}
		case de.Action == actionAdd:
			// A PHP error page: the request is over.
			return Diagnosis{ClassAnswered, delivery.Reason{Code: delivery.CRMErrorPage, HTTPStatus: de.StatusCode}}
		}
		return Diagnosis{ClassTransient, delivery.Reason{Code: delivery.CRMUnexpected, HTTPStatus: de.StatusCode}}
	case errors.As(err, &te):
		if te.Action == actionAdd && te.Sent {
			return Diagnosis{ClassAmbiguous, delivery.Reason{Code: delivery.CRMTimeout}}
		}
		return Diagnosis{ClassTransient, delivery.Reason{Code: delivery.CRMUnreachable}}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Not from a request of this package (those are TransportErrors
		// that say whether they were sent): nothing was sent.
		return Diagnosis{ClassTransient, delivery.Reason{Code: delivery.CRMUnreachable}}
	}
	return Diagnosis{ClassPermanent, delivery.Reason{Code: delivery.Unexpected, Detail: err.Error()}}
}

// diagnoseAPI diagnoses the CRM's own error answer.
func diagnoseAPI(ae *APIError) Diagnosis {
	r := delivery.Reason{CRMCode: ae.Code, Detail: ae.Text}
	switch {
	case ae.addFailed():
		r.Code = delivery.CRMRejected
		return Diagnosis{ClassPermanent, r}
	case ae.Code == 400:
		r.Code = delivery.ConfigAPIKey
	case ae.Code == 401:
		r.Code = delivery.ConfigLogin
	case ae.Code == 402:
		r.Code = delivery.ConfigMethod
	default:
		r.Code = delivery.CRMRefused
		return Diagnosis{ClassPermanent, r}
	}
	return Diagnosis{ClassConfig, r}
}

// diagnoseStatus diagnoses an HTTP status other than 200.
func diagnoseStatus(se *StatusError) Diagnosis {
	add := se.Action == actionAdd
	c := se.StatusCode
	r := func(code delivery.Code) delivery.Reason { return delivery.Reason{Code: code, HTTPStatus: c} }
	switch {
	case c == http.StatusTooManyRequests:
		return Diagnosis{ClassRateLimited, r(delivery.CRMRateLimited)}
	case c == http.StatusRequestTimeout:
		// The server gave up waiting for our request.
		return Diagnosis{ClassTransient, r(delivery.CRMUnreachable)}
	case add && (c == http.StatusInternalServerError || c == http.StatusBadGateway):
		// A PHP fatal with display_errors off answers 500 with an empty
		// body, and the fatal may come after the insert; a proxy answers
		// 502 when PHP died mid-request. Either way the request is over.
		return Diagnosis{ClassAnswered, r(delivery.CRMErrorPage)}
	case add && c == http.StatusGatewayTimeout:
		// The proxy stopped waiting; PHP behind it may still commit.
		return Diagnosis{ClassAmbiguous, r(delivery.CRMTimeout)}
	case c >= 500:
		// 503 and the like: the request never reached PHP.
		return Diagnosis{ClassTransient, r(delivery.CRMUnreachable)}
	case c >= 300 && c < 500:
		return Diagnosis{ClassConfig, configStatus(se)}
	case add:
		return Diagnosis{ClassAnswered, r(delivery.CRMErrorPage)}
	default:
		return Diagnosis{ClassTransient, r(delivery.CRMUnexpected)}
	}
}

// configStatus is the configuration problem an HTTP status from 300 to
// 499 shows.
func configStatus(se *StatusError) delivery.Reason {
	r := delivery.Reason{Code: delivery.ConfigHTTP, HTTPStatus: se.StatusCode}
	switch c := se.StatusCode; {
	case c == http.StatusNotFound:
		r.Code = delivery.ConfigNotFound
	case c == http.StatusUnauthorized || c == http.StatusForbidden:
		r.Code = delivery.ConfigAccess
	case c == http.StatusMethodNotAllowed:
		r.Code = delivery.ConfigPost
	case c >= 300 && c < 400:
		r.Code, r.Detail = delivery.ConfigRedirect, se.Location
	}
	return r
}

// RetryAfter returns the delay the server asked for with Retry-After, if err
// carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// looksLikeMissingInclude reports whether s holds PHP's fatal error for a
// file that require/include could not open.
func looksLikeMissingInclude(s string) bool {
	if !strings.Contains(s, "Fatal error") {
		return false
	}
	for _, k := range []string{"require", "include", "Failed opening", "No such file"} {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// HTTPStatus is the HTTP status of the answer a call got: 200 for a
// success (nil) and for the CRM's own error or an unreadable 200 answer,
// the status of any other answer, 0 when there was no answer (a
// transport failure).
func HTTPStatus(err error) int {
	var (
		ae *APIError
		se *StatusError
		de *DecodeError
	)
	switch {
	case err == nil, errors.As(err, &ae):
		return http.StatusOK
	case errors.As(err, &se):
		return se.StatusCode
	case errors.As(err, &de):
		return de.StatusCode
	}
	return 0
}
