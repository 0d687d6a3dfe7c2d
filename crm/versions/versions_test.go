package versions_test

import (
	"testing"

	"leadrelay/crm"
	"leadrelay/crm/crmtest"
	"leadrelay/crm/versions"
	"leadrelay/crmclient"
)

// TestFor: each version LeadRelay speaks has its API; any other is
// refused, never taken for one of them.
func TestFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		client crmclient.APIVersion
		ok     bool
	}{
		{crmclient.V1, true},
		{crmclient.V2, true},
		{"v3", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.client), func(t *testing.T) {
			t.Parallel()
			api, err := versions.For(crm.Env{Client: crmtest.New(tc.client)})
			switch {
			case tc.ok && (err != nil || api.Version() != tc.client):
				t.Fatalf("For(%q) = %v, %v; want the version's API", tc.client, api, err)
			case !tc.ok && (err == nil || api != nil):
				t.Fatalf("For(%q) = %v, %v; want refused", tc.client, api, err)
			}
		})
	}
}
