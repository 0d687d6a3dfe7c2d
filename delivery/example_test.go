package delivery_test

import (
	"fmt"

	"leadrelay/delivery"
)

// A failed run's reason decides what becomes of the lead and is told to
// each audience in its own words.
func Example() {
	r := delivery.Reason{Code: delivery.ConfigAPIKey, CRMCode: 400, Detail: "Не верный API key"}
	fmt.Println(delivery.Decide(r.Outcome(), 2, 80))
	fmt.Println(r.Text(delivery.Sites))
	fmt.Println(r.Text(delivery.Operators))
	fmt.Println(r.Text(delivery.Chat))

	down := delivery.Reason{Code: delivery.CRMUnreachable, HTTPStatus: 503}
	if delivery.Decide(down.Outcome(), 80, 80) == delivery.DeadLetter {
		fmt.Println(delivery.DeathReason(down.Outcome(), down))
	}
	// Output:
	// postpone
	// delivery paused until an operator fixes the relay's CRM settings; the lead is kept
	// the CRM rejected the API key (CRM code 400): check LEADRELAY_CRM_APIKEY: Не верный API key
	// the CRM rejected the API key [config_api_key] (CRM code 400): check LEADRELAY_CRM_APIKEY
	// retries exhausted: the budget is LEADRELAY_MAX_RETRY; the last failure: the CRM could not be reached (HTTP 503)
}
