package intake

import (
	"net/http"

	"leadrelay/api"
)

// serveOpenAPI serves the API's OpenAPI 3.1 description.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	note(r, "", "", "openapi")
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(api.OpenAPI)
}

// rootBody is the answer to GET /: where to go from here.
type rootBody struct {
	Service string `json:"service"`
	OpenAPI string `json:"openapi"`
	API     string `json:"api"`
	Docs    string `json:"docs"`
	OpsUI   string `json:"ops_ui"`
}

// serveRoot points a visitor of / to the API, its description and the
// operators' UI at opsUI, instead of a bare 404.
func serveRoot(opsUI string) http.HandlerFunc {
	ops := "the operators' listener (LEADRELAY_OPS_ADDR), never this one"
	if opsUI != "" {
		ops = opsUI + " on " + ops
	}
	return func(w http.ResponseWriter, r *http.Request) {
		note(r, "", "", "root")
		writeJSON(w, http.StatusOK, rootBody{
			Service: "LeadRelay: relays web-site leads into the SalesMan CRM",
			OpenAPI: "/openapi.json",
			API:     "POST /v1/leads, POST /v1/leads/batch, GET /v1/leads/{id}; drop-in: /developer/v1/leads, /developer/v2/lead",
			Docs:    "README.md, section Sending leads",
			OpsUI:   ops,
		})
	}
}
