package crmclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIVersion selects which SalesMan leads API the client speaks.
type APIVersion string

// The supported API versions.
const (
	// V1 is developer/v1/leads. Its add and info fail on current self-hosted
	// SalesMan releases (a missing include file); see Diagnose.
	V1 APIVersion = "v1"
	// V2 is developer/v2/lead. It accepts uids and, optionally, a JSON body.
	V2 APIVersion = "v2"
)

// DefaultTimeout is the per-request timeout used when WithTimeout is not given.
const DefaultTimeout = 30 * time.Second

// DefaultUserAgent is sent when WithUserAgent is not given.
const DefaultUserAgent = "leadrelay-crmclient/1"

// DefaultMaxIdleConns is how many idle connections to the CRM a client
// keeps when WithMaxIdleConns is not given.
const DefaultMaxIdleConns = 16

// Option configures a Client in New. An Option returns an error for input it
// cannot use, and New reports it.
type Option func(*Client) error

// WithAPIVersion selects the API version. The default is V1
// ({base}/developer/v1/leads); V2 uses {base}/developer/v2/lead.
func WithAPIVersion(v APIVersion) Option {
	return func(c *Client) error {
		switch v {
		case V1, V2:
			c.version = v
			return nil
		default:
			return fmt.Errorf("unknown API version %q (want %q or %q)", v, V1, V2)
		}
	}
}

// WithHTTPClient makes the client send requests through hc, so that callers
// can share a transport or add instrumentation. The client uses a shallow
// copy of hc whose CheckRedirect refuses redirects: following a redirect
// would turn the POST into a GET without the form, and the CRM would answer
// with a misleading auth error. Without this option the client builds its own
// http.Client with a keep-alive transport.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("nil *http.Client")
		}
		c.hc = hc
		return nil
	}
}

// WithMaxIdleConns keeps up to n idle keep-alive connections to the CRM
// (default DefaultMaxIdleConns). Give it at least the number of requests
// the caller makes at once (the worker's concurrency): with fewer, every
// request beyond n opens a new connection, and a PHP CRM pays a TCP (and
// TLS) handshake for each. A client built WithHTTPClient keeps what that
// client's transport keeps.
func WithMaxIdleConns(n int) Option {
	return func(c *Client) error {
		if n <= 0 {
			return fmt.Errorf("idle connections must be positive, got %d", n)
		}
		c.maxIdle = n
		return nil
	}
}

// WithTimeout sets the per-request timeout (default DefaultTimeout). It
// bounds one HTTP exchange, including reading the body; the caller's context
// can only shorten it.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("timeout must be positive, got %s", d)
		}
		c.timeout = d
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default DefaultUserAgent).
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if ua == "" {
			return errors.New("empty user agent")
		}
		if !validHeaderValue(ua) {
			return errors.New("user agent contains control characters")
		}
		c.userAgent = ua
		return nil
	}
}

// WithJSON makes a V2 client send JSON bodies (Content-Type exactly
// application/json) with login and apikey as headers. New rejects it for V1,
// which only reads forms. The default is an urlencoded form.
func WithJSON(on bool) Option {
	return func(c *Client) error {
		c.json = on
		return nil
	}
}

// WithLocation sets the time zone of the CRM server, used to turn its
// wall-clock dates (datum, datum_do) into instants. The default is UTC, which
// keeps the wall clock but labels it UTC.
func WithLocation(loc *time.Location) Option {
	return func(c *Client) error {
		if loc == nil {
			return errors.New("nil *time.Location")
		}
		c.loc = loc
		return nil
	}
}

// validHeaderValue reports whether s can be sent as an HTTP header value.
func validHeaderValue(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return r < ' ' && r != '\t' || r == 0x7f
	})
}
