package delivery

import "testing"

func TestDecide(t *testing.T) {
	t.Parallel()
	const budget = 3
	tests := []struct {
		name            string
		o               Outcome
		attempt, budget int
		want            Verdict
	}{
		{"transient, first run", Transient, 0, budget, Retry},
		{"transient, one retry left", Transient, budget - 1, budget, Retry},
		{"transient, last attempt", Transient, budget, budget, DeadLetter},
		{"transient, past the spare run", Transient, budget + 1, budget, DeadLetter},
		{"uncertain, first run", Uncertain, 0, budget, Retry},
		{"uncertain, last attempt", Uncertain, budget, budget, DeadLetter},
		{"final, first run", Final, 0, budget, DeadLetter},
		{"final, last attempt", Final, budget, budget, DeadLetter},
		{"paused, first run", Paused, 0, budget, Postpone},
		{"paused, on the last attempt", Paused, budget, budget, Postpone},
		{"paused, past the spare run", Paused, budget + 1, budget, DeadLetter},
		{"backpressure, first run", Backpressure, 0, budget, Postpone},
		{"backpressure, on the last attempt", Backpressure, budget, budget, Postpone},
		{"backpressure, past the spare run", Backpressure, budget + 1, budget, DeadLetter},
		{"none", None, 0, budget, Postpone},
		{"zero budget, transient", Transient, 0, 0, DeadLetter},
		{"zero budget, backpressure", Backpressure, 0, 0, Postpone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Decide(tc.o, tc.attempt, tc.budget); got != tc.want {
				t.Errorf("Decide(%v, %d, %d) = %v, want %v", tc.o, tc.attempt, tc.budget, got, tc.want)
			}
		})
	}
}

// TestDecideNeverPostponesPastTheSpareRun: for every outcome and attempt,
// a verdict that runs the lead again leaves it a run asynq will grant
// (attempt+1 ≤ budget+1 runs after a retry; attempt ≤ budget after a
// postponement), so asynq never archives a lead LeadRelay did not kill.
func TestDecideNeverPostponesPastTheSpareRun(t *testing.T) {
	t.Parallel()
	for budget := range 5 {
		for attempt := range budget + 4 {
			for o := Transient; o <= Backpressure; o++ {
				switch v := Decide(o, attempt, budget); v {
				case Retry:
					if attempt+1 > budget {
						t.Errorf("Decide(%v, %d, %d) retries past the budget", o, attempt, budget)
					}
				case Postpone:
					if attempt > budget {
						t.Errorf("Decide(%v, %d, %d) postpones a run asynq would archive", o, attempt, budget)
					}
				}
			}
		}
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		o                 Outcome
		name              string
		spends, postpones bool
	}{
		{None, "none", false, false},
		{Transient, "retry", true, false},
		{Uncertain, "uncertain", true, false},
		{Final, "dead", false, false},
		{Paused, "pause", false, true},
		{Backpressure, "backpressure", false, true},
	}
	for _, tc := range tests {
		if tc.o.String() != tc.name || tc.o.Spends() != tc.spends || tc.o.Postpones() != tc.postpones {
			t.Errorf("%d: %q spends %v postpones %v; want %q %v %v", tc.o, tc.o, tc.o.Spends(), tc.o.Postpones(),
				tc.name, tc.spends, tc.postpones)
		}
	}
}

func TestDeathReason(t *testing.T) {
	t.Parallel()
	rejected := Reason{Code: CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}
	if got := DeathReason(Final, rejected); got != rejected {
		t.Errorf("a final failure dies with its own reason, got %+v", got)
	}
	down := Reason{Code: CRMUnreachable, HTTPStatus: 503}
	got := DeathReason(Transient, down)
	if got.Code != RetriesExhausted || got.Last != CRMUnreachable || got.HTTPStatus != 503 {
		t.Errorf("exhausted = %+v", got)
	}
	if again := got.Exhausted(); again != got {
		t.Errorf("exhausting twice changed it: %+v", again)
	}
}
