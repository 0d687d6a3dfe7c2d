package crm

import (
	"context"

	"leadrelay/crmclient"
	"leadrelay/delivery"
)

// CheckStat is the preflight every version shares: the CRM's stat must
// answer, which checks URL, login and key. It returns the configuration
// problem found, or the error when the CRM could not be reached.
func CheckStat(ctx context.Context, c Client) (delivery.Reason, error) {
	_, err := c.Stat(ctx)
	if problem := Problem(err); !problem.IsZero() {
		return problem, nil
	}
	return delivery.Reason{}, err
}

// Problem is the configuration problem a CRM call's error shows
// (deliveries must pause until an operator fixes it), or no reason.
func Problem(err error) delivery.Reason {
	if d := crmclient.Diagnose(err); d.Reason.Outcome() == delivery.Paused {
		return d.Reason
	}
	return delivery.Reason{}
}
