package rdb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"leadrelay/delivery"
)

// Circuit is the fleet's view of the CRM (BreakerKey): whether calls may go
// ahead, and the configuration problem an operator must fix, if any.
type Circuit struct {
	// Wait > 0: the circuit is open (or a half-open probe is in flight);
	// do not call the CRM for this long.
	Wait time.Duration
	// ProbeDue: the cooldown is over and no probe is in flight; the next
	// caller may claim the probe (ClaimProbe).
	ProbeDue bool
	// Probing: the cooldown is over and a half-open probe is in flight;
	// Wait is what is left of its lease.
	Probing bool
	// Exists: the circuit has state to reset after a working call.
	Exists bool
	// Problem is the configuration problem seen by any worker, the zero
	// Reason if none. The previous version's sentence reads as
	// delivery.Legacy.
	Problem delivery.Reason
	// ProblemAt is when it was last seen.
	ProblemAt time.Time
}

var circuitPeekScript = load("circuit_peek")

func parseCircuit(v any) (Circuit, error) {
	f, err := asStrings(v)
	if err != nil || len(f) != 5 {
		return Circuit{}, fmt.Errorf("rdb: circuit: unexpected answer %v", v)
	}
	w, _ := strconv.ParseInt(f[0], 10, 64)
	return Circuit{Wait: time.Duration(w) * time.Millisecond, ProbeDue: f[1] == "1", Probing: f[1] == "2", Exists: f[2] == "1",
		Problem: delivery.ParseReason(f[3]), ProblemAt: fromMS(f[4])}, nil
}

// Circuit reads the fleet's circuit (for readiness and gauges).
func (s *Store) Circuit(ctx context.Context, now time.Time) (Circuit, error) {
	v, err := circuitPeekScript.Run(ctx, s.c, []string{BreakerKey}, ms(now)).Result()
	if err != nil {
		return Circuit{}, err
	}
	return parseCircuit(v)
}

var claimProbeScript = load("circuit_probe")

// ClaimProbe makes this caller the half-open probe; false means another
// caller is probing or the circuit reopened.
func (s *Store) ClaimProbe(ctx context.Context, now time.Time, ttl time.Duration) (bool, error) {
	n, err := claimProbeScript.Run(ctx, s.c, []string{BreakerKey}, ms(now), ttl.Milliseconds()).Int()
	return n == 1, err
}

var circuitFailScript = load("circuit_fail")

// Lead fault memory (CRMLeadFailsKey): how long a lead whose CRM call
// failed is remembered, and how many are at most (then the memory starts
// again: each lead's next failure counts once more).
const (
	leadFailsTTL = 7 * 24 * time.Hour
	leadFailsCap = 10000
)

// CircuitArgs tune the circuit's scripts.
type CircuitArgs struct {
	// Now is the time of the call.
	Now time.Time
	// Threshold is the consecutive transient failures that open it.
	Threshold int
	// Cooldown is how long it stays open before a probe.
	Cooldown time.Duration
	// TTL bounds the key's life, so a stale circuit cannot outlive a fleet.
	TTL time.Duration
	// Lead is the lead whose call failed (CircuitFailed): a failure that
	// follows its lead is not the CRM's. Empty counts every failure.
	Lead string
}

// CircuitState is what a failure did to the circuit.
type CircuitState int

// The answers of CircuitFailed.
const (
	// CircuitClosed: the failure was counted; the circuit stays closed.
	CircuitClosed CircuitState = iota
	// CircuitOpened: this failure opened it.
	CircuitOpened
	// CircuitReopened: it was open or half-open and opens again.
	CircuitReopened
	// CircuitLeadFault: the failure follows its lead (it failed before,
	// and the CRM worked for others since): the lead's, not the CRM's;
	// nothing was counted.
	CircuitLeadFault
)

// CircuitFailed records a transient CRM failure of a.Lead's call. While
// the circuit is closed, a lead that failed before, when a working call
// cleared the failures since (CircuitReset), is told apart: its failure
// answers CircuitLeadFault and counts nothing. Its first failure cannot
// be told from the CRM's, and counts.
func (s *Store) CircuitFailed(ctx context.Context, a CircuitArgs) (CircuitState, error) {
	n, err := circuitFailScript.Run(ctx, s.c, []string{BreakerKey, CRMLeadFailsKey, CRMWorkedKey},
		ms(a.Now), a.Threshold, a.Cooldown.Milliseconds(), a.TTL.Milliseconds(),
		a.Lead, leadFailsTTL.Milliseconds(), leadFailsCap).Int()
	return CircuitState(n), err
}

var circuitProblemScript = load("circuit_problem")

// CircuitProblem opens the circuit for every worker because the CRM's
// configuration is wrong, recording problem for every readiness check.
func (s *Store) CircuitProblem(ctx context.Context, a CircuitArgs, problem delivery.Reason) error {
	return circuitProblemScript.Run(ctx, s.c, []string{BreakerKey},
		ms(a.Now), a.Cooldown.Milliseconds(), a.TTL.Milliseconds(), problem.Encode()).Err()
}

var circuitResetScript = load("circuit_reset")

// CircuitReset closes the circuit and clears any problem: the CRM works.
// It counts the reset (CRMWorkedKey), by which CircuitFailed tells a lead
// that fails again while the CRM works for others. ended says this call
// closed a circuit an outage had opened (not a configuration problem):
// of the fleet's workers, one call learns it.
func (s *Store) CircuitReset(ctx context.Context) (ended bool, err error) {
	v, err := circuitResetScript.Run(ctx, s.c, []string{BreakerKey, CRMWorkedKey}, leadFailsTTL.Milliseconds()).Int64Slice()
	if err != nil {
		return false, err
	}
	return len(v) == 2 && v[1] == 1, nil
}
