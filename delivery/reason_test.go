package delivery

import (
	"encoding/json"
	"strings"
	"testing"
)

// internalWords must never reach a site: settings, stores, addresses,
// codes and the CRM's own words.
var internalWords = []string{"leadrelay_", "redis", "http://", "https://", "asynq", "lua", "crm code", "http ", "_"}

// siteTexts are the only sentences a site may read.
var siteTexts = map[string]bool{
	siteUnreachable: true, siteBusy: true, siteUnexpected: true, sitePaused: true, siteChecking: true,
	siteRelay: true, siteRetrying: true, siteRejected: true, siteGaveUp: true,
}

// TestEveryCodeHasEveryText: each code renders for every audience, sites
// read one of the short stable sentences and nothing internal, chat names
// the code and never the CRM's text, operators read the CRM's text and,
// for a configuration problem, the setting to fix.
func TestEveryCodeHasEveryText(t *testing.T) {
	t.Parallel()
	const crmText = "Не верный API key"
	for _, c := range Codes() {
		t.Run(string(c), func(t *testing.T) {
			t.Parallel()
			r := Reason{Code: c, CRMCode: 400, HTTPStatus: 502, Detail: crmText}
			site, op, chat := r.Text(Sites), r.Text(Operators), r.Text(Chat)
			if site == "" || op == "" || chat == "" {
				t.Fatalf("site %q operators %q chat %q", site, op, chat)
			}
			if !siteTexts[site] {
				t.Errorf("site text %q is not one of the site sentences", site)
			}
			for _, w := range internalWords {
				if strings.Contains(strings.ToLower(site), w) {
					t.Errorf("site text %q holds %q", site, w)
				}
			}
			if strings.Contains(site, crmText) || strings.Contains(chat, crmText) {
				t.Errorf("the CRM's text reached a site or chat: %q, %q", site, chat)
			}
			if !strings.Contains(chat, string(c)) || !strings.Contains(chat, "400") {
				t.Errorf("chat %q lacks the code or its parameters", chat)
			}
			if !strings.Contains(op, crmText) || !strings.Contains(op, "CRM code 400") || !strings.Contains(op, "HTTP 502") {
				t.Errorf("operators' text %q lacks the CRM's text or the parameters", op)
			}
			if c.Outcome() == Paused && !strings.Contains(op, "LEADRELAY_") {
				t.Errorf("a configuration problem's operator text %q names no setting", op)
			}
			if r.String() != op {
				t.Errorf("String() = %q, want the operators' text", r.String())
			}
			if !c.Known() || c.Outcome() == None {
				t.Errorf("code %s: known %v, outcome %v", c, c.Known(), c.Outcome())
			}
		})
	}
}

func TestReasonText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    Reason
		a    Audience
		want string
	}{
		{"zero", Reason{}, Operators, ""},
		{"zero for sites", Reason{}, Sites, ""},
		{"api key", Reason{Code: ConfigAPIKey, CRMCode: 400}, Operators,
			"the CRM rejected the API key (CRM code 400): check LEADRELAY_CRM_APIKEY"},
		{"api key, chat", Reason{Code: ConfigAPIKey, CRMCode: 400, Detail: "Не верный API key"}, Chat,
			"the CRM rejected the API key [config_api_key] (CRM code 400): check LEADRELAY_CRM_APIKEY"},
		{"api key, sites", Reason{Code: ConfigAPIKey, CRMCode: 400}, Sites, sitePaused},
		{"redirect", Reason{Code: ConfigRedirect, HTTPStatus: 301, Detail: "https://crm.example/"}, Operators,
			"the CRM address redirects (HTTP 301): set LEADRELAY_CRM_URL to the final address: https://crm.example/"},
		{"setting overrides the table's", Reason{Code: Config, Setting: "LEADRELAY_CRM_URL"}, Operators,
			"the CRM settings are wrong: check LEADRELAY_CRM_URL"},
		{"rejected", Reason{Code: CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}, Operators,
			"the CRM rejected the lead (CRM code 1): Ошибка добавления лида"},
		{"rejected, sites", Reason{Code: CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"}, Sites, siteRejected},
		{"exhausted", Reason{Code: CRMUnreachable, HTTPStatus: 503}.Exhausted(), Operators,
			"retries exhausted: the budget is LEADRELAY_MAX_RETRY; the last failure: the CRM could not be reached (HTTP 503)"},
		{"exhausted, chat", Reason{Code: CRMUnreachable, HTTPStatus: 503}.Exhausted(), Chat,
			"retries exhausted [retries_exhausted, last crm_unreachable] (HTTP 503): the budget is LEADRELAY_MAX_RETRY"},
		{"exhausted, sites", Reason{Code: CRMUnreachable}.Exhausted(), Sites, siteGaveUp},
		{"timeout, sites", Reason{Code: CRMTimeout}, Sites, siteUnreachable},
		{"look-up wait, sites", Reason{Code: LookUpWait}, Sites, siteChecking},
		{"store, sites", Reason{Code: Store}, Sites, siteRelay},
		{"legacy", Reason{Code: Legacy, Detail: "retries exhausted: CRM unreachable"}, Operators,
			"as the previous version recorded it: retries exhausted: CRM unreachable"},
		{"a newer version's code", Reason{Code: "from_the_future"}, Sites, siteRetrying},
		{"a newer version's code, operators", Reason{Code: "from_the_future"}, Operators, "from_the_future"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.r.Text(tc.a); got != tc.want {
				t.Errorf("Text = %q\n          want %q", got, tc.want)
			}
		})
	}
}

func TestReasonJSON(t *testing.T) {
	t.Parallel()
	r := Reason{Code: RetriesExhausted, Last: CRMErrorPage, HTTPStatus: 500, Detail: "<b>Fatal error</b>"}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"code":"retries_exhausted","http_status":500,"last":"crm_error_page","detail":"\u003cb\u003eFatal error\u003c/b\u003e"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	tests := []struct {
		name, in string
		want     Reason
	}{
		{"as written", string(b), r},
		{"encoded", r.Encode(), r},
		{"the previous version's sentence", `"the CRM rejected the lead (code 1: x)"`,
			Reason{Code: Legacy, Detail: "the CRM rejected the lead (code 1: x)"}},
		{"an empty sentence", `""`, Reason{}},
	}
	for _, tc := range tests {
		var got Reason
		if err := json.Unmarshal([]byte(tc.in), &got); err != nil || got != tc.want {
			t.Errorf("%s: Unmarshal = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	for in, want := range map[string]Reason{
		"":                             {},
		r.Encode():                     r,
		"check LEADRELAY_CRM_APIKEY":   {Code: Legacy, Detail: "check LEADRELAY_CRM_APIKEY"},
		`{"not":"a reason"}`:           {Code: Legacy, Detail: `{"not":"a reason"}`},
		`{"code":"config_api_key"}`:    {Code: ConfigAPIKey},
		`{"code":"config_api_key"`:     {Code: Legacy, Detail: `{"code":"config_api_key"`},
		`{"code":"config","crm_code"}`: {Code: Legacy, Detail: `{"code":"config","crm_code"}`},
	} {
		if got := ParseReason(in); got != want {
			t.Errorf("ParseReason(%q) = %+v, want %+v", in, got, want)
		}
	}
	if (Reason{}).Encode() != "" {
		t.Error("the zero Reason encodes as text")
	}
}
