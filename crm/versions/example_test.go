package versions_test

import (
	"fmt"
	"time"

	"leadrelay/crm"
	"leadrelay/crm/crmtest"
	"leadrelay/crm/versions"
	"leadrelay/crmclient"
)

// For picks the behaviour of the version a client speaks; what a run must
// do for it is in its capabilities, and a version LeadRelay does not know
// is refused.
func ExampleFor() {
	client, err := crmclient.New("https://crm.example.com", "admin@example.com", "key",
		crmclient.WithAPIVersion(crmclient.V2))
	if err != nil {
		panic(err)
	}
	api, err := versions.For(crm.Env{Client: client, Timeout: 30 * time.Second, Clock: time.Now})
	fmt.Printf("%s %+v %v\n", api.Version(), api.Caps(), err)

	_, err = versions.For(crm.Env{Client: crmtest.New("v3")})
	fmt.Println(err)
	// Output:
	// v2 {CountSends:false DeliveredTop:true CheckErrorPages:false} <nil>
	// crm: unknown SalesMan API version "v3" (LeadRelay speaks "v1" and "v2")
}
