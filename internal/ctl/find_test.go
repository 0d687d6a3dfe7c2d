package ctl

import (
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/lead"
)

// TestQueuesSite: --site counts one site's leads in each state.
func TestQueuesSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.enqueue(t, payload("shop", "p1"))
	e.enqueue(t, payload("shop", "p2"))
	e.enqueue(t, payload("blog", "p3"))
	e.enqueue(t, payload("shop", "s1"), asynq.ProcessIn(time.Hour))
	e.putDead(t, "shop", "d1", time.Minute)
	e.putDead(t, "blog", "d2", time.Minute)
	out, _, err := e.run(t, "", "--json", "queues", "--site", "shop")
	if err != nil {
		t.Fatal(err)
	}
	r := decodeJSON[siteRow](t, out)
	if r != (siteRow{Site: "shop", Queue: "leads", Pending: 2, Waiting: 1, Dead: 1}) {
		t.Errorf("shop = %+v", r)
	}
	out, _, err = e.run(t, "", "queues", "--site", "blog")
	if err != nil || !strings.Contains(out, "blog") || !strings.HasPrefix(out, "SITE") {
		t.Errorf("table: %v\n%s", err, out)
	}
}

// TestLeadFind: leads are found by e-mail (any case) and by phone digits,
// queued ones and dead ones alike.
func TestLeadFind(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	p := lead.NewPayload("shop", "k1", lead.Lead{Title: "Ann", Email: "Ann@Example.com", Phone: "+7 (900) 123-45-67"}, now)
	e.enqueue(t, p)
	e.enqueue(t, payload("shop", "other"))
	dead := e.putDead(t, "blog", "gone", time.Minute) // email gone@example.com
	tests := []struct {
		name string
		args []string
		want []string // ids
		code int
	}{
		{"email any case", []string{"--email", "ann@example.COM"}, []string{p.ID}, ExitOK},
		{"phone digits", []string{"--phone", "79001234567"}, []string{p.ID}, ExitOK},
		{"phone without country code", []string{"--phone", "900 123 45 67"}, []string{p.ID}, ExitOK},
		{"dead lead", []string{"--email", "gone@example.com"}, []string{dead}, ExitOK},
		{"nothing", []string{"--email", "nobody@example.com"}, nil, ExitNotFound},
		{"no criterion", nil, nil, ExitUsage},
		{"phone without digits", []string{"--phone", "call me"}, nil, ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := e.run(t, "", append([]string{"--json", "lead", "find"}, tc.args...)...)
			if ExitCode(err) != tc.code {
				t.Fatalf("exit %d (%v), want %d", ExitCode(err), err, tc.code)
			}
			if tc.code == ExitUsage {
				return
			}
			ans := decodeJSON[findAnswer](t, out)
			var got []string
			for _, l := range ans.Leads {
				got = append(got, l.ID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("found %v, want %v\n%s", got, tc.want, out)
			}
			if ans.Leads == nil {
				t.Error("leads is null, want []")
			}
		})
	}
}

// TestDeadReason: lists and dead show render the stored reason in the
// operators' words, with the CRM's code and text; dead show names its
// code too.
func TestDeadReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	p := payload("shop", "raw")
	r := delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}
	if err := e.store.Put(t.Context(), deadletter.Record{LeadID: p.ID, Site: "shop", Reason: r, Attempts: 1, DeadAt: now}); err != nil {
		t.Fatal(err)
	}
	out, _, err := e.run(t, "", "dead", "list")
	if err != nil || !strings.Contains(out, "the CRM rejected the lead (CRM code 1)") {
		t.Errorf("dead list: %v\n%s", err, out)
	}
	out, _, err = e.run(t, "", "dead", "show", p.ID)
	if err != nil || !strings.Contains(out, r.Text(delivery.Operators)) || !strings.Contains(out, "crm_rejected") {
		t.Errorf("dead show: %v\n%s", err, out)
	}
	out, _, err = e.run(t, "", "--json", "dead", "list")
	if err != nil || !strings.Contains(out, `"reason_code": "crm_rejected"`) {
		t.Errorf("dead list --json: %v\n%s", err, out)
	}
}
