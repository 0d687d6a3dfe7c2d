package rdb

import (
	"testing"
	"time"

	"leadrelay/delivery"
)

// TestCircuitLeadFault: a lead that fails again after the CRM worked for
// others is told apart and counts nothing, however often it fails; a lead
// that fails again while nothing worked (an outage) still counts, and so
// does any failure while the circuit is open. Before, every failure of a
// poison lead counted, and its retries alone opened the circuit.
func TestCircuitLeadFault(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := startStore(t)
	now := time.Now()
	a := func(lead string) CircuitArgs {
		return CircuitArgs{Now: now, Threshold: 3, Cooldown: time.Minute, TTL: time.Hour, Lead: lead}
	}
	fail := func(lead string) CircuitState {
		t.Helper()
		st, err := s.CircuitFailed(ctx, a(lead))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	steps := []struct {
		name string
		do   func() CircuitState
		want CircuitState
	}{
		{"poison's first failure counts", func() CircuitState { return fail("poison") }, CircuitClosed},
		{"another lead works", func() CircuitState {
			if ended, err := s.CircuitReset(ctx); err != nil || ended {
				t.Fatalf("reset of a closed circuit: ended %v, %v; want no outage ended", ended, err)
			}
			return CircuitClosed
		}, CircuitClosed},
		{"poison again: its own", func() CircuitState { return fail("poison") }, CircuitLeadFault},
		{"and again, nothing worked between", func() CircuitState { return fail("poison") }, CircuitLeadFault},
		{"and again", func() CircuitState { return fail("poison") }, CircuitLeadFault},
		{"an outage: a first failure", func() CircuitState { return fail("a") }, CircuitClosed},
		{"the same lead, nothing worked since", func() CircuitState { return fail("a") }, CircuitClosed},
		{"a third failure opens it", func() CircuitState { return fail("b") }, CircuitOpened},
		{"open: the poison lead's failure reopens it", func() CircuitState { return fail("poison") }, CircuitReopened},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Fatalf("%s: %v, want %v", st.name, got, st.want)
		}
	}
	if c, _ := s.Circuit(ctx, now); c.Wait <= 0 {
		t.Fatalf("circuit %+v, want open", c)
	}
	for i, want := range []bool{true, false} { // the first reset ends the outage; the second finds it ended
		if ended, err := s.CircuitReset(ctx); err != nil || ended != want {
			t.Fatalf("reset %d of the open circuit: ended %v, %v; want %v", i+1, ended, err, want)
		}
	}
	if err := s.CircuitProblem(ctx, a(""), delivery.Reason{Code: delivery.ConfigAPIKey}); err != nil {
		t.Fatal(err)
	}
	if ended, err := s.CircuitReset(ctx); err != nil || ended {
		t.Fatalf("reset after a configuration problem: ended %v, %v; want no outage (the problem has its own end)", ended, err)
	}
}
