// Package versions picks the SalesMan API version a CRM client speaks: the
// one place that maps a version's name to its package.
package versions

import (
	"fmt"

	"leadrelay/crm"
	v1 "leadrelay/crm/v1"
	v2 "leadrelay/crm/v2"
	"leadrelay/crmclient"
)

// For returns the API of the version env.Client speaks. A version without
// a package here is an error: a run of one version's look-up against
// another's CRM could send a lead twice.
func For(env crm.Env) (crm.API, error) {
	switch v := env.Client.Version(); v {
	case crmclient.V1:
		return v1.New(env), nil
	case crmclient.V2:
		return v2.New(env), nil
	default:
		return nil, fmt.Errorf("crm: unknown SalesMan API version %q (LeadRelay speaks %q and %q)", v, crmclient.V1, crmclient.V2)
	}
}
