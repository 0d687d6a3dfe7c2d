package crmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The API actions.
const (
	actionAdd  = "add"
	actionStat = "stat"
	actionInfo = "info"
	actionList = "list"
)

const (
	// maxBody bounds a success body (a list page of 200 leads is far less).
	maxBody = 8 << 20
	// maxErrorBody bounds what is read, then drained, of a non-200 body.
	maxErrorBody = 64 << 10
)

// Client talks to one SalesMan CRM as one user. It is safe for concurrent
// use; create one with New and share it, so that connections are reused.
// The zero value is not usable.
type Client struct {
	endpoint  string // {base}/developer/v1/leads or {base}/developer/v2/lead
	login     string
	apiKey    string
	version   APIVersion
	hc        *http.Client
	timeout   time.Duration
	userAgent string
	json      bool
	loc       *time.Location

	maxBody int64            // success bodies larger than this fail
	now     func() time.Time // for Retry-After dates
	secrets []string         // forms of apiKey to scrub from error text
	maxIdle int              // idle connections kept (own transport only)

	fix Sanitize // what Add changes before sending (WithSanitize)
}

// New returns a client for the CRM at baseURL (the CRM root, e.g.
// "https://crm.example.com"), signing in as login with the account's API
// key. It fails on a malformed URL, an empty login or key, or a bad option.
func New(baseURL, login, apiKey string, opts ...Option) (*Client, error) {
	c := &Client{
		fix:       DefaultSanitize,
		login:     login,
		apiKey:    apiKey,
		version:   V1,
		timeout:   DefaultTimeout,
		userAgent: DefaultUserAgent,
		loc:       time.UTC,
		maxBody:   maxBody,
		maxIdle:   DefaultMaxIdleConns,
		now:       time.Now,
	}
	c.secrets = secretForms(apiKey)
	// URL errors name the host only: a URL may carry secrets.
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("crmclient: bad CRM URL: %s", c.redact(err.Error()))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("crmclient: bad CRM URL: scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		return nil, errors.New("crmclient: bad CRM URL: no host")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("crmclient: bad CRM URL (host %s): must not have a query or fragment", u.Host)
	}
	if strings.TrimSpace(login) == "" {
		return nil, errors.New("crmclient: empty login")
	}
	if strings.TrimSpace(apiKey) == "" {
		return nil, errors.New("crmclient: empty API key")
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("crmclient: %w", err)
		}
	}
	if c.json && c.version != V2 {
		return nil, errors.New("crmclient: WithJSON needs WithAPIVersion(V2): v1 reads forms only")
	}
	if c.json && (!validHeaderValue(login) || !validHeaderValue(apiKey)) {
		return nil, errors.New("crmclient: login or API key contains control characters and cannot be sent as a header")
	}

	path := "/developer/v1/leads"
	if c.version == V2 {
		path = "/developer/v2/lead"
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	c.endpoint = u.String()

	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = c.maxIdle
		t.MaxIdleConns = max(t.MaxIdleConns, c.maxIdle)
		c.hc = &http.Client{Transport: t}
	} else {
		hc := *c.hc
		c.hc = &hc
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

// Version returns the API version the client speaks.
func (c *Client) Version() APIVersion { return c.version }

// secretForms lists the ways the key could appear in text: as is, and
// percent-encoded once or twice.
func secretForms(key string) []string {
	if key == "" {
		return nil
	}
	forms := []string{key}
	for _, f := range []string{url.QueryEscape(key), url.PathEscape(key), url.QueryEscape(url.QueryEscape(key))} {
		if f != key {
			forms = append(forms, f)
		}
	}
	// Longest first, so a longer encoded form is not half-replaced.
	for i := 1; i < len(forms); i++ {
		for j := i; j > 0 && len(forms[j]) > len(forms[j-1]); j-- {
			forms[j], forms[j-1] = forms[j-1], forms[j]
		}
	}
	return forms
}

// redact removes the API key from text that reaches an error.
func (c *Client) redact(s string) string {
	for _, f := range c.secrets {
		s = strings.ReplaceAll(s, f, "REDACTED")
	}
	return s
}

// params is one request's parameters besides auth and action.
type params struct {
	keys []string
	vals map[string]string
	uids map[string]string
}

func (p *params) set(k, v string) {
	if p.vals == nil {
		p.vals = make(map[string]string)
	}
	if _, ok := p.vals[k]; !ok {
		p.keys = append(p.keys, k)
	}
	p.vals[k] = v
}

// setNonEmpty sets k unless v is empty: the CRM treats absent and empty alike.
func (p *params) setNonEmpty(k, v string) {
	if v != "" {
		p.set(k, v)
	}
}

// newRequest builds the POST for action. v1 double-decodes login, apikey and
// user, so they are encoded twice; v2 JSON mode sends auth as headers.
func (c *Client) newRequest(ctx context.Context, action string, p params) (*http.Request, error) {
	var (
		body        []byte
		contentType string
	)
	if c.json {
		m := make(map[string]any, len(p.keys)+2)
		m["action"] = action
		for _, k := range p.keys {
			m[k] = p.vals[k]
		}
		if len(p.uids) > 0 {
			m["uids"] = p.uids
		}
		var err error
		if body, err = json.Marshal(m); err != nil {
			return nil, err
		}
		contentType = "application/json" // exactly: a charset suffix switches v2 to form mode
	} else {
		f := url.Values{}
		login, key := c.login, c.apiKey
		if c.version == V1 {
			login, key = url.QueryEscape(login), url.QueryEscape(key)
		}
		f.Set("login", login)
		f.Set("apikey", key)
		f.Set("action", action)
		for _, k := range p.keys {
			v := p.vals[k]
			if c.version == V1 && k == "user" {
				v = url.QueryEscape(v)
			}
			f.Set(k, v)
		}
		for k, v := range p.uids {
			f.Set("uids["+k+"]", v)
		}
		body = []byte(f.Encode())
		contentType = "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.json {
		// Set directly: the CRM looks for lower-case names first.
		req.Header["login"] = []string{c.login}
		req.Header["apikey"] = []string{c.apiKey}
	}
	return req, nil
}

// answer is a 200 response: its body, already read and bounded.
type answer struct {
	body        []byte
	contentType string
}

// do sends one request and returns the body of a 200 answer. Other outcomes
// come back as *StatusError, *DecodeError (too large) or *TransportError.
func (c *Client) do(ctx context.Context, action string, p params) (answer, error) {
	if err := ctx.Err(); err != nil {
		return answer{}, &TransportError{Action: action, Err: err}
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var sent atomic.Bool
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				sent.Store(true)
			}
		},
	})
	req, err := c.newRequest(rctx, action, p)
	if err != nil {
		return answer{}, fmt.Errorf("crmclient: %s: building request: %s", action, c.redact(err.Error()))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, c.transportError(ctx, action, sent.Load(), err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return answer{}, &StatusError{
			Action:     action,
			StatusCode: resp.StatusCode,
			Snippet:    c.snippet(b),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
			Location:   c.redact(resp.Header.Get("Location")),
		}
	}
	ct := resp.Header.Get("Content-Type")
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return answer{}, c.transportError(ctx, action, true, err)
	}
	if int64(len(b)) > c.maxBody {
		return answer{}, &DecodeError{
			Action:      action,
			StatusCode:  resp.StatusCode,
			ContentType: ct,
			Snippet:     c.snippet(b),
			Err:         fmt.Errorf("%w (over %d bytes)", ErrBodyTooLarge, c.maxBody),
		}
	}
	// Drain what a well-behaved server left (nothing, normally) so the
	// connection goes back to the pool.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	return answer{body: b, contentType: ct}, nil
}

// transportError wraps err; when the caller's ctx is done, its Err is
// ctx.Err() so that errors.Is(err, context.Canceled) holds.
func (c *Client) transportError(ctx context.Context, action string, sent bool, err error) *TransportError {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &TransportError{Action: action, Sent: sent, Err: ctxErr}
	}
	return &TransportError{Action: action, Sent: sent, Err: c.sanitize(err)}
}

// sanitize scrubs the API key from err's text, keeping err in the chain for
// errors.Is/As. A *url.Error is copied with its URL scrubbed.
func (c *Client) sanitize(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		cp := *ue
		cp.URL = c.redact(cp.URL)
		if u, perr := url.Parse(cp.URL); perr == nil {
			cp.URL = u.Redacted()
		}
		if err == error(ue) {
			err = &cp
		}
	}
	msg := err.Error()
	if red := c.redact(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// redactedError shows a scrubbed message and unwraps to the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// decodeError builds the DecodeError for a 200 answer that did not decode.
func (c *Client) decodeError(action string, a answer, err error) *DecodeError {
	return &DecodeError{
		Action:         action,
		StatusCode:     http.StatusOK,
		ContentType:    a.contentType,
		Snippet:        c.snippet(a.body),
		Err:            c.sanitize(err),
		missingInclude: looksLikeMissingInclude(string(a.body[:min(len(a.body), 4<<10)])),
	}
}

// apiError completes an *APIError from a decoder.
func (c *Client) apiError(action string, ae *APIError) *APIError {
	ae.Action = action
	ae.Text = c.redact(ae.Text)
	return ae
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// It returns 0 when absent, malformed or already past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
