package worker

import (
	"context"
	"errors"
	"testing"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/delivery"
)

// TestJudgeLookUpFailures: a look-up that could not finish says nothing
// about the lead: backpressure, whether the CRM or Redis failed it. The
// look-up's own Redis bookkeeping (crm.StoreError) counts as LeadRelay's
// store, as the worker's does, never as a CRM answer.
func TestJudgeLookUpFailures(t *testing.T) {
	t.Parallel()
	redisDown := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	tests := []struct {
		name  string
		err   error
		code  delivery.Code
		class crmclient.Class
	}{
		{"a look-up's claim", &lookupError{crm.StoreErr("claim CRM id", redisDown)}, delivery.Store, crmclient.ClassNone},
		{"a look-up's claim, timed out", &lookupError{crm.StoreErr("claim CRM id", context.DeadlineExceeded)}, delivery.Store, crmclient.ClassNone},
		{"the worker's own", &lookupError{crm.StoreErr("record attempt", redisDown)}, delivery.Store, crmclient.ClassNone},
		{"a catch-up's journal merge", crm.StoreErr("merge CRM journal", redisDown), delivery.Store, crmclient.ClassNone},
		{"a look-up's list", &lookupError{diagnosed(&crmclient.TransportError{Action: "list", Err: redisDown})}, delivery.LookUpFailed, crmclient.ClassTransient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := judge(tc.err)
			if f.out != delivery.Backpressure || f.reason.Code != tc.code || f.class != tc.class {
				t.Fatalf("judge = %+v, want backpressure, %s, class %v", f, tc.code, tc.class)
			}
		})
	}
}
