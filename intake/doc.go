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
// The drop-in reads old sites as they are (SiteSettings): the charset a
// form declares or the site's (windows-1251, KOI8-R, ISO-8859-5, UTF-8),
// the names real forms give their fields (the lead's alias table, then the
// site's own mapping), and keeps a field that maps to nothing as a line of
// the description. Text that is not valid in its charset never costs the
// lead. Every lead, from either surface, names its site in the CRM field
// the site's attribution chooses (lead.Attribution).
//
// After authentication each request passes the site's origin allow-list
// (CORS), the Redis-shared rate limits and, for sites with a secret, the
// HMAC signature check; failed authentications are rate-limited per client
// address (a right key is never refused for them). Before anything is
// stored, Capacity bounds the backlog of undelivered leads per site and in
// all, and guards Redis's memory. Spam hints are carried to the CRM, never
// used to drop a lead. A site reads where its lead is from package status,
// and its last failure as the reason's short stable site text
// (delivery.Sites), never the worker's or the CRM's words.
//
// The sites live in a Directory, which a reload of the sites file replaces
// whole while intake serves; each request reads the set it came in with.
//
// Serve the handler through NewHTTPServer, which sets the timeouts that keep
// slow clients from holding connections, on a GuardListener that caps the
// open connections, those of one client, and the idle time near the cap:
//
//	dir := intake.NewDirectory(map[string]intake.Site{
//		"shop": {Keys: []string{shopKey}, Origins: []string{"https://shop.example"}},
//	}, log)
//	h := intake.New(intake.Options{
//		Directory: dir,
//		Limiter:   intake.NewRedisLimiter(rdb, siteRate, globalRate, intake.WithSiteRates(dir.SiteRate)),
//		Replays:   intake.NewRedisReplays(rdb),
//	}, pub, log)
//	srv := intake.NewHTTPServer(addr, h)
//	ln, err := net.Listen("tcp", srv.Addr)
//	…
//	go srv.Serve(intake.GuardListener(srv, ln, intake.ConnLimits{Max: 1024, PerClient: 64}))
//	dir.Replace(reloadedSites) // a site added, a key rotated: no restart
package intake
