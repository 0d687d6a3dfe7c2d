package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"leadrelay/delivery"
)

const crmKey = "crm-secret-key-0123456789"

// hook is a test webhook that answers the statuses given, in order, then
// 200, and records what it got.
type hook struct {
	mu       sync.Mutex
	statuses []int
	bodies   []message
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m message
	_ = json.Unmarshal(b, &m)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, m)
	if len(h.statuses) > 0 {
		s := h.statuses[0]
		h.statuses = h.statuses[1:]
		if s == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(s)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// webhook serves h for the test and returns a Webhook built with o that
// posts to h at path.
func (h *hook) webhook(t *testing.T, path string, o Options) *Webhook {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	wh, err := NewWebhook(srv.URL+path, o)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

func TestSend(t *testing.T) {
	t.Parallel()
	dead := Event{Kind: LeadDead, Site: "shop", LeadID: "ld_1", Reason: delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1}}
	tests := []struct {
		name     string
		statuses []int
		ev       Event
		wantErr  string
		requests int
	}{
		{"first time", nil, dead, "", 1},
		{"retried after 503 and 502", []int{503, 502}, dead, "", 3},
		{"429 with Retry-After", []int{429}, Event{Kind: ConfigProblem, Reason: delivery.Reason{Code: delivery.ConfigAPIKey}}, "", 2},
		{"gives up after the attempts", []int{500, 500, 500}, dead, "HTTP 500", 3},
		{"a wrong URL is not retried", []int{404}, dead, "check the webhook URL", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &hook{statuses: tc.statuses}
			wh := h.webhook(t, "/hooks/token-abc", Options{Attempts: 3, InitialBackoff: time.Millisecond,
				MaxBackoff: 2 * time.Millisecond, Redact: []string{crmKey}})
			err := wh.Send(t.Context(), tc.ev)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Send = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "token-abc") {
				t.Errorf("error names the webhook's token: %v", err)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.bodies) != tc.requests {
				t.Fatalf("%d requests, want %d", len(h.bodies), tc.requests)
			}
			m := h.bodies[0]
			if m.Text == "" || m.Username != "LeadRelay" || m.Kind != tc.ev.Kind || strings.Contains(m.Text, crmKey) {
				t.Errorf("body = %+v", m)
			}
			if tc.ev.Kind == LeadDead && (!strings.Contains(m.Text, "ld_1") || !strings.Contains(m.Text, "ctl dead requeue ld_1") || m.ReasonCode != "crm_rejected") {
				t.Errorf("dead-lead text = %q", m.Text)
			}
		})
	}
}

// TestRunDelivers: Notify never blocks; Run delivers what was queued and
// a full queue drops and counts.
func TestRunDelivers(t *testing.T) {
	t.Parallel()
	h := &hook{}
	wh := h.webhook(t, "", Options{Queue: 2})
	for i := 0; i < 3; i++ {
		wh.Notify(Event{Kind: ConfigResolved})
	}
	if wh.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", wh.Dropped())
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); wh.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		n := len(h.bodies)
		h.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 queued events delivered", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewWebhookChecksURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "hooks.slack.com/x", "ftp://x", "http://"} {
		if _, err := NewWebhook(u, Options{}); err == nil {
			t.Errorf("NewWebhook(%q) accepted", u)
		}
	}
}

// TestNoRedirects is finding 9 of issue 18: the webhook followed
// redirects, so a 307 made it POST the notification again to another
// path (or host). It failed on main: the POST reached /elsewhere and Send
// reported success. Now a redirect is an answer like a 404: not followed,
// not retried, reported with the advice to set the final URL.
func TestNoRedirects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		client *http.Client
	}{
		{"307", http.StatusTemporaryRedirect, nil},
		{"308", http.StatusPermanentRedirect, nil},
		{"302", http.StatusFound, nil},
		{"307, the caller's client", http.StatusTemporaryRedirect, &http.Client{Timeout: 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			hits := map[string]int{}
			mux := http.NewServeMux()
			mux.HandleFunc("/hooks/token-abc", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits[r.URL.Path]++
				mu.Unlock()
				http.Redirect(w, r, "/elsewhere", tc.status)
			})
			mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits[r.URL.Path]++
				mu.Unlock()
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			wh, err := NewWebhook(srv.URL+"/hooks/token-abc", Options{Client: tc.client, Attempts: 3, InitialBackoff: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			err = wh.Send(t.Context(), Event{Kind: ConfigResolved})
			if err == nil || !strings.Contains(err.Error(), "redirect") || strings.Contains(err.Error(), "token-abc") {
				t.Errorf("Send = %v, want an error about the redirect that names no token", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if hits["/hooks/token-abc"] != 1 || hits["/elsewhere"] != 0 {
				t.Errorf("requests %v, want one to the hook and none elsewhere", hits)
			}
		})
	}
}

// TestChatCarriesNoCRMText is the other half of finding 9 of issue 18:
// the CRM's raw error text (which may quote the lead: a name, an e-mail)
// went to chat at the default level, since an Event's reason was any
// text. Now it is a delivery.Reason, rendered for chat: the code, its
// parameters and the fix; the CRM's text (Detail) never leaves, and a
// secret that reaches a text anyway is still cut out.
func TestChatCarriesNoCRMText(t *testing.T) {
	t.Parallel()
	h := &hook{}
	wh := h.webhook(t, "", Options{Redact: []string{crmKey}})
	crmText := "Lead Ann Lee <ann@example.com> rejected, key " + crmKey
	for _, ev := range []Event{
		{Kind: LeadDead, Site: "shop", LeadID: "ld_1", Reason: delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: crmText}},
		{Kind: LeadDead, Site: "shop", LeadID: "ld_2", Reason: delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: crmText}.Exhausted()},
		{Kind: ConfigProblem, Reason: delivery.Reason{Code: delivery.ConfigAPIKey, CRMCode: 400, Detail: crmText}},
	} {
		if err := wh.Send(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, want := range []string{"[crm_rejected]", "[retries_exhausted, last crm_rejected]", "[config_api_key]"} {
		m := h.bodies[i]
		for _, leak := range []string{"Ann Lee", "ann@example.com", crmKey, "rejected, key"} {
			if strings.Contains(m.Text, leak) {
				t.Errorf("chat text holds %q: %s", leak, m.Text)
			}
		}
		if !strings.Contains(m.Text, want) || !strings.Contains(m.Text, "CRM code") {
			t.Errorf("chat text %q lacks the code %s and the CRM's code", m.Text, want)
		}
	}
}
