// Package crm is the behaviour of a SalesMan leads API version, behind one
// interface (API): how a lead is added, how an add that got no clear
// answer is looked up, how the CRM's configuration is checked, and the
// capabilities (Caps) that shape a delivery run. The worker asks an API;
// it never asks which version it is.
//
// Each version owns its look-up strategy, in a package of its own:
//
//	crm/v1        no stamps: content match, first in a journal of the
//	              CRM's newest leads (the shipped v1 list ignores its
//	              parameters and shows only the newest 200), then pages
//	crm/v2        the uids stamp, or content where the stamp is missing
//	              (v2 stamps after its webhooks)
//	crm/versions  For: the version a client speaks; an unknown one is an
//	              error, never taken for another
//
// This package holds what versions share: the content match and its
// claims (match.go), the paging scan (scan.go) and the stat preflight.
// A new version is a new package implementing API, and a line in
// versions.For.
//
//	api, err := versions.For(crm.Env{Client: client, Store: store, Timeout: 30 * time.Second, Clock: time.Now})
//	id, err := api.Add(ctx, p)
//	res, err := api.LookUp(ctx, p, attempt) // after an uncertain add
package crm
