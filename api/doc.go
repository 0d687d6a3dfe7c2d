// Package api holds LeadRelay's OpenAPI 3.1 description of the site-facing
// HTTP API (the JSON API and the SalesMan drop-in endpoints). Intake serves
// it at /openapi.json; intake's conformance test checks every route and
// answer against it, so the two cannot drift apart.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document, as JSON.
//
//go:embed openapi.json
var OpenAPI []byte
