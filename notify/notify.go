// Package notify tells people when a lead dies or the CRM has a
// configuration problem, through an incoming webhook whose JSON body Slack
// and Mattermost accept ({"text": …}). Sending never blocks the caller: a
// Webhook queues events and delivers them from Run, retrying with backoff.
//
//	wh, err := notify.NewWebhook(cfg.Notify.URL, notify.Options{Log: log, Redact: []string{cfg.CRM.APIKey}})
//	go wh.Run(ctx)
//	wh.Notify(notify.Event{Kind: notify.LeadDead, Site: "shop", LeadID: id, Reason: reason})
//
// A notification carries a delivery.Reason and renders it for chat
// (delivery.Chat): the code, its parameters and the fix, never the CRM's own
// text, which may quote the lead and goes to a chat that is not the
// operators' UI.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"leadrelay/delivery"
)

// Kinds of Event.
const (
	// LeadDead: a lead was given up and waits in the dead-letter store.
	LeadDead = "lead_dead"
	// ConfigProblem: deliveries are paused by a CRM configuration problem.
	ConfigProblem = "crm_config_problem"
	// ConfigResolved: the configuration problem is gone; deliveries resume.
	ConfigResolved = "crm_config_resolved"
	// CircuitOpened: the CRM failed repeatedly (an outage); the fleet's
	// circuit opened and deliveries pause. Reason is the failure.
	CircuitOpened = "crm_circuit_opened"
	// CircuitClosed: the CRM answers again; the circuit closed and
	// deliveries resume.
	CircuitClosed = "crm_circuit_closed"
	// AuditDuplicate: the CRM audit found a lead in the CRM twice; CRMID
	// is the extra CRM lead.
	AuditDuplicate = "audit_duplicate"
	// AuditMissing: the CRM audit found a delivered lead the CRM does not
	// list; CRMID is the CRM lead the relay recorded.
	AuditMissing = "audit_missing"
	// RedisRollback: Redis came back with older data (an older snapshot,
	// a lagging replica promoted); leads received before are looked up
	// before any add for worker.RollbackGuard.
	RedisRollback = "redis_rollback"
)

// Event is one thing worth telling an operator. The zero value is not
// useful; set Kind.
type Event struct {
	// Kind is LeadDead, ConfigProblem, ConfigResolved, CircuitOpened or
	// CircuitClosed.
	Kind string
	// Site and LeadID name the lead (LeadDead, AuditDuplicate,
	// AuditMissing).
	Site, LeadID string
	// CRMID is the CRM lead an audit found (AuditDuplicate, AuditMissing).
	CRMID int64
	// Reason is why the lead died, or the configuration problem. Only its
	// chat rendering is sent: its Detail (the CRM's text) never is.
	Reason delivery.Reason
}

// Notifier takes events to tell people about. Notify must not block; a
// Webhook implements it, and so does Nop.
type Notifier interface {
	Notify(e Event)
}

// Nop is a Notifier that tells nobody.
type Nop struct{}

// Notify drops e.
func (Nop) Notify(Event) {}

// Options tune a Webhook. The zero value retries 5 times from 1 s up to
// 1 min, queues 100 events and logs nothing.
type Options struct {
	// Client sends the requests; nil uses one with a 10 s timeout. Its
	// redirect policy is replaced: a webhook follows no redirect.
	Client *http.Client
	// Log receives delivery failures (never the URL: it holds a token).
	Log *zap.Logger
	// Attempts is how often one event is tried; zero means 5.
	Attempts int
	// InitialBackoff and MaxBackoff bound the wait between tries; zero
	// means 1 s and 1 min. A Retry-After from the hook wins.
	InitialBackoff, MaxBackoff time.Duration
	// Queue is how many events wait for delivery; past it new events are
	// dropped and counted (Dropped). Zero means 100.
	Queue int
	// Redact are secrets (the CRM's API key) cut out of every text sent,
	// whatever put them there.
	Redact []string
	// Name is the sender's name shown in the chat; empty means LeadRelay.
	Name string
}

// Webhook posts events to one incoming-webhook URL. Build it with
// NewWebhook and start Run.
type Webhook struct {
	url     string
	o       Options
	events  chan Event
	dropped atomic.Int64
}

// NewWebhook checks rawURL (http or https, with a host) and returns a
// Webhook that posts to it. The URL is secret: it is never logged.
func NewWebhook(rawURL string, o Options) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("notify: the webhook URL must be an http(s) URL such as https://hooks.slack.com/services/…")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	// A redirect would re-send the event, POST and all, wherever the
	// answer points: to another path or host than the one configured.
	client := *o.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.Client = &client
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Queue <= 0 {
		o.Queue = 100
	}
	if o.Name == "" {
		o.Name = "LeadRelay"
	}
	return &Webhook{url: rawURL, o: o, events: make(chan Event, o.Queue)}, nil
}

// Notify queues e for Run; when the queue is full it drops e.
func (w *Webhook) Notify(e Event) {
	select {
	case w.events <- e:
	default:
		w.dropped.Add(1)
		w.o.Log.Warn("notification dropped: queue full", zap.String("kind", e.Kind))
	}
}

// Dropped is how many events were dropped because the queue was full.
func (w *Webhook) Dropped() int64 { return w.dropped.Load() }

// Run delivers queued events, one at a time, until ctx is done.
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-w.events:
			if err := w.Send(ctx, e); err != nil && ctx.Err() == nil {
				w.o.Log.Warn("notification not delivered", zap.String("kind", e.Kind), zap.String("lead_id", e.LeadID), zap.Error(err))
			}
		}
	}
}

// message is the body: Slack's and Mattermost's incoming webhooks read
// text and username; the rest is for other receivers.
type message struct {
	Text       string `json:"text"`
	Username   string `json:"username,omitempty"`
	Kind       string `json:"kind"`
	Site       string `json:"site,omitempty"`
	LeadID     string `json:"lead_id,omitempty"`
	CRMID      int64  `json:"crm_id,omitempty"`
	ReasonCode string `json:"reason_code,omitempty"`
}

// Text renders e as the one line people read; its reason as
// delivery.Chat renders it.
func Text(e Event) string {
	reason := e.Reason.Text(delivery.Chat)
	switch e.Kind {
	case LeadDead:
		return fmt.Sprintf("Lead %s of site %s is dead: %s. Requeue it from the ops UI or with: leadrelay ctl dead requeue %s", e.LeadID, e.Site, reason, e.LeadID)
	case ConfigProblem:
		return "Deliveries to the CRM are paused by a configuration problem: " + reason + ". Leads wait in the queue; none is lost; the ops listener's /readyz has the details."
	case ConfigResolved:
		return "The CRM configuration problem is gone: deliveries resume."
	case CircuitOpened:
		return "The CRM is failing (" + reason + "): deliveries pause without spending attempts. Leads wait in the queue; none is lost."
	case CircuitClosed:
		return "The CRM answers again: the circuit closed and deliveries resume."
	case AuditDuplicate:
		return fmt.Sprintf("The CRM audit found lead %s of site %s in the CRM twice: CRM lead %d is a duplicate. Merge or delete it in the CRM; leadrelay ctl audit lists every duplicate found.", e.LeadID, e.Site, e.CRMID)
	case RedisRollback:
		return "Redis came back with older data (restored from an older snapshot, or a lagging replica took over): leads acknowledged just before may be lost, and every lead received before now is looked up at the CRM before it is added, for a day. Check Redis's persistence (appendonly yes)."
	case AuditMissing:
		return fmt.Sprintf("The CRM audit found lead %s of site %s delivered as CRM lead %d, which the CRM no longer lists (deleted there?). leadrelay ctl lead status %s shows its runs.", e.LeadID, e.Site, e.CRMID, e.LeadID)
	}
	return e.Kind + ": " + reason
}

// Send posts e now, retrying transient failures (network, 429, 5xx) with
// backoff. It returns the last error; a 4xx other than 429, and a redirect
// (never followed), are not retried.
func (w *Webhook) Send(ctx context.Context, e Event) error {
	body, err := json.Marshal(message{Text: w.redact(Text(e)), Username: w.o.Name, Kind: e.Kind,
		Site: e.Site, LeadID: e.LeadID, CRMID: e.CRMID, ReasonCode: string(e.Reason.Code)})
	if err != nil {
		return err
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = w.o.InitialBackoff, w.o.MaxBackoff, 0
	b.Reset()
	var last error
	for attempt := 1; ; attempt++ {
		wait, err := w.post(ctx, body)
		if err == nil {
			return nil
		}
		last = err
		var perm *permanentError
		if errors.As(err, &perm) || attempt >= w.o.Attempts {
			return last
		}
		if wait <= 0 {
			wait = b.NextBackOff()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// permanentError is an answer a retry cannot change.
type permanentError struct{ status int }

func (e *permanentError) Error() string {
	if e.status >= 300 && e.status < 400 {
		return "webhook answered HTTP " + strconv.Itoa(e.status) + ", a redirect, which is not followed (set the final URL as the webhook URL)"
	}
	return "webhook answered HTTP " + strconv.Itoa(e.status) + " (check the webhook URL)"
}

// post sends body once. wait is the hook's Retry-After, if any.
func (w *Webhook) post(ctx context.Context, body []byte) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("notify: cannot build the request")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the hook's token
		}
		return 0, fmt.Errorf("webhook unreachable: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = min(time.Duration(s)*time.Second, w.o.MaxBackoff)
		}
		return wait, fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	}
	return 0, &permanentError{status: resp.StatusCode}
}

// redact cuts every secret out of s.
func (w *Webhook) redact(s string) string {
	for _, secret := range w.o.Redact {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}
