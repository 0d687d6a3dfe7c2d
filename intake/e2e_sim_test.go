package intake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"leadrelay/crmclient"
	"leadrelay/crmsim"
	"leadrelay/crmsim/crmsimtest"
	"leadrelay/intake"
	"leadrelay/intake/intaketest"
	"leadrelay/lead"
)

const (
	simKey     = "sim-crm-key-0123456789"
	simLogin   = "admin@example.com"
	oldshopKey = "oldshop-key-0123456789abc"
	koiKey     = "koi-site-key-0123456789abc"
)

// relay is intake, a worker and the CRM simulator, in this process, on a
// real Redis: what reaches the simulator is what a real site's form gives.
type relay struct {
	intake http.Handler
	sim    *crmsim.Sim
}

// startRelay runs the relay against the simulator speaking API version v.
func startRelay(t *testing.T, v crmclient.APIVersion, settings map[string]intake.SiteSettings) *relay {
	t.Helper()
	sim, base := crmsimtest.Start(t, crmsim.Config{APIKey: simKey, Seed: 1})
	crm, err := crmclient.New(base, simLogin, simKey, crmclient.WithAPIVersion(v))
	if err != nil {
		t.Fatal(err)
	}
	pub := intaketest.StartDelivery(t, crm, intaketest.SimWorker)
	sites := map[string]string{"oldshop": oldshopKey, "koi": koiKey}
	return &relay{intake: intake.New(intake.Options{Sites: sites, SiteSettings: settings}, pub, intaketest.Log(t)), sim: sim}
}

// send serves one drop-in request and returns the answer.
func (r *relay) send(t *testing.T, req *http.Request) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.intake.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(b), "Success") {
		t.Fatalf("answer %s", b)
	}
	return string(b)
}

// delivered waits until the simulator holds n leads and returns them.
func (r *relay) delivered(t *testing.T, n int) []crmsim.StoredLead {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(r.sim.Leads()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d leads in the CRM after 20s", len(r.sim.Leads()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r.sim.Leads()
}

// query is a drop-in add for site with key, every value percent-encoded
// byte for byte.
func query(site, key string, kv ...string) string {
	return intaketest.Form(append([]string{"login", site, "apikey", key, "action", "add"}, kv...)...)
}

// TestDropInReachesCRM: drop-in forms in windows-1251 and KOI8-R, POSTed
// with their charset or sent as GET in the site's, with the names real
// forms use and a field the relay does not know, reach the simulator as
// the right Cyrillic text, title, phone and the unknown field kept; a lead
// from site oldshop shows oldshop in the field the site chose. Through
// both API versions of the CRM.
func TestDropInReachesCRM(t *testing.T) {
	t.Parallel()
	const name, message = "Иван Петров", "Перезвоните после 18:00, ёлки"
	settings := map[string]intake.SiteSettings{
		"oldshop": {Charset: "windows-1251", Attribution: lead.AttributePath},
		"koi":     {Charset: "koi8-r"},
	}
	for _, v := range []crmclient.APIVersion{crmclient.V1, crmclient.V2} {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, v, settings)
			w1251 := func(s string) string { return intaketest.Encode(t, charmap.Windows1251, s) }
			koi := func(s string) string { return intaketest.Encode(t, charmap.KOI8R, s) }
			post, get := intaketest.DropInPost, intaketest.DropInGet
			// Each lead has its own phone, to tell them apart in the CRM.
			reqs := []*http.Request{
				post("application/x-www-form-urlencoded; charset=windows-1251",
					query("oldshop", oldshopKey, "name", w1251(name), "tel", "+7 900 000-00-01", "message", w1251(message), "favourite_colour", w1251("зелёный"))),
				get(query("oldshop", oldshopKey, "name", w1251(name), "tel", "+7 900 000-00-02", "message", w1251(message), "favourite_colour", w1251("зелёный"))),
				post("application/x-www-form-urlencoded; charset=koi8-r",
					query("koi", koiKey, "name", koi(name), "tel", "+7 900 000-00-03", "message", koi(message), "favourite_colour", koi("зелёный"))),
				get(query("koi", koiKey, "name", koi(name), "tel", "+7 900 000-00-04", "message", koi(message), "favourite_colour", koi("зелёный"))),
			}
			for _, req := range reqs {
				r.send(t, req)
			}
			byPhone := map[string]crmsim.StoredLead{}
			for _, l := range r.delivered(t, len(reqs)) {
				byPhone[l.Phone] = l
			}
			for i, site := range []string{"oldshop", "oldshop", "koi", "koi"} {
				phone := "+7 900 000-00-0" + string(rune('1'+i))
				l, ok := byPhone[phone]
				if !ok {
					t.Errorf("lead %d (%s) not in the CRM: %v", i+1, phone, byPhone)
					continue
				}
				desc := message + "\nfavourite_colour: зелёный"
				if site == "koi" {
					desc += "\nSite: koi" // the default: a description line
				}
				if l.Title != name || !strings.HasPrefix(l.Description, desc) {
					t.Errorf("lead %d in the CRM: title %q description %q; want %q %q", i+1, l.Title, l.Description, name, desc)
				}
				if site == "oldshop" && l.ClientPath != "oldshop" {
					t.Errorf("lead %d from oldshop: client source %q, want oldshop", i+1, l.ClientPath)
				}
			}
		})
	}
}

// TestDropInReconciled: a drop-in lead whose add the CRM stored but whose
// answer was lost (v1), or that the CRM stored without its stamp (v2), is
// found by the worker's look-up by content, site line, unknown-field
// lines and windows-1251 text included, and is in the CRM once.
func TestDropInReconciled(t *testing.T) {
	t.Parallel()
	settings := map[string]intake.SiteSettings{"oldshop": {Charset: "windows-1251"}}
	for _, tc := range []struct {
		v      crmclient.APIVersion
		faults crmsim.Faults
	}{
		{crmclient.V1, crmsim.Faults{AmbiguousRate: 1}},
		{crmclient.V2, crmsim.Faults{StampKillRate: 1}},
	} {
		t.Run(string(tc.v), func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, tc.v, settings)
			r.sim.SetFaults(tc.faults)
			var ids []string
			for i, phone := range []string{"+7 900 000-00-11", "+7 900 000-00-12"} {
				body := r.send(t, intaketest.DropInGet(query("oldshop", oldshopKey,
					"fio", intaketest.Encode(t, charmap.Windows1251, "Анна"), "tel", phone, "comment", intaketest.Encode(t, charmap.Windows1251, "Жду звонка"),
					"order_no", strings.Repeat("7", i+1))))
				ids = append(ids, body[strings.Index(body, "ld_"):strings.Index(body, "ld_")+27])
			}
			deadline := time.Now().Add(30 * time.Second)
			for _, id := range ids {
				for r.status(t, id) != "delivered" {
					if time.Now().After(deadline) {
						t.Fatalf("lead %s %q after 30s; CRM holds %d leads", id, r.status(t, id), len(r.sim.Leads()))
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			leads := r.sim.Leads()
			if len(leads) != 2 {
				t.Fatalf("the CRM holds %d leads, want 2 (each once): %+v", len(leads), leads)
			}
			for _, l := range leads {
				if l.Title != "Анна" || !strings.HasPrefix(l.Description, "Жду звонка\norder_no: 7") || !strings.Contains(l.Description, "\nSite: oldshop") {
					t.Errorf("lead in the CRM: %q %q", l.Title, l.Description)
				}
			}
		})
	}
}

// status is a lead's delivery status, as its site sees it.
func (r *relay) status(t *testing.T, id string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/v1/leads/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+oldshopKey)
	rec := httptest.NewRecorder()
	r.intake.ServeHTTP(rec, req)
	var st struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &st)
	return st.Status
}
