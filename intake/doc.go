// Package intake is the HTTP server web sites hand their leads to. It
// authenticates the site, reads the lead strictly, and acknowledges it only
// after the producer has it in Redis.
//
// Two surfaces feed the same pipeline:
//
//   - the JSON API, POST /v1/leads and GET /v1/leads/{id}, with
//     "Authorization: Bearer <site key>" and an optional Idempotency-Key;
//   - a drop-in copy of the SalesMan CRM's developer/v1/leads (action=add
//     only), so a site already integrated with SalesMan changes only its
//     crm_url: login is the site's name, apikey its key.
//
// Serve the handler through NewHTTPServer, which sets the timeouts that keep
// slow clients from holding connections:
//
//	h := intake.New(intake.Options{Sites: cfg.Sites}, pub, log)
//	srv := intake.NewHTTPServer(cfg.HTTPAddr, h)
//	err := srv.ListenAndServe()
package intake
