// Package crmclient is a client for the leads API of SalesMan CRM, versions
// v1 (developer/v1/leads) and v2 (developer/v2/lead): add a lead, read one,
// list them, and count them per user.
//
// The CRM answers HTTP 200 even for errors, labels JSON as HTML, sends
// numbers as strings, and on some releases answers v1 add with a PHP fatal
// error. The client hides these quirks and reports every failure as a typed
// error; Diagnose says whether to retry (its Class) and why (a
// delivery.Reason, whose texts name what an operator should fix). The
// client never retries and never logs.
//
//	c, err := crmclient.New("https://crm.example.com", "robot@example.com", apiKey,
//		crmclient.WithAPIVersion(crmclient.V2))
//	if err != nil {
//		return err
//	}
//	id, err := c.Add(ctx, crmclient.Lead{
//		Lead: lead.Lead{Title: "Ann", Email: "ann@example.com"},
//		UIDs: map[string]string{"leadrelay": leadID}})
//	d := crmclient.Diagnose(err)
//	switch d.Class {
//	case crmclient.ClassNone: // stored as id
//	case crmclient.ClassTransient: // retry later
//	case crmclient.ClassAmbiguous: // may be stored: look for the uid before resending
//	case crmclient.ClassConfig: // stop: d.Reason.Text(delivery.Operators) says what to fix
//	default: // give up on this lead
//	}
package crmclient
