package realcrm

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/text/encoding/charmap"

	"leadrelay/crmclient"
	"leadrelay/intake"
	"leadrelay/intake/intaketest"
	"leadrelay/lead"
	"leadrelay/worker"
)

// TestRealCRMDropInSites sends drop-in forms as old sites do (windows-1251
// and KOI8-R, POSTed with their charset or sent as GET in the site's; the
// names real forms use; a field the relay does not know) through intake
// and a worker, in this process, to the real CRM over v2, and reads
// MariaDB: the CRM must store the right Cyrillic text, title, phone, the
// unknown field's line, and each lead's site where its site's attribution
// puts it. It also pins down what the CRM does with each attribution
// (README, "The site in the CRM").
func TestRealCRMDropInSites(t *testing.T) {
	s := realCRM(t)
	run := time.Now().Format("150405")
	// Site names unique to the run: the CRM keeps its sources.
	sites := map[string]intake.SiteSettings{
		"oldshop":           {Charset: "windows-1251", Attribution: lead.AttributePath},
		"koi" + run:         {Charset: "koi8-r"}, // the default: a description line
		"utm" + run:         {Attribution: lead.AttributeUTMSource},
		"partner" + run:     {Attribution: lead.AttributePartner},
		"desc" + run:        {Charset: "cp1251", Attribution: lead.AttributeDescription},
		"oldshopjson" + run: {Attribution: lead.AttributePath},
	}
	h := startRelayOn(t, s, sites)

	const name, message, colour = "Иван Петров", "Перезвоните после 18:00, ёлки-палки", "зелёный"
	w1251 := func(v string) string { return intaketest.Encode(t, charmap.Windows1251, v) }
	koi := func(v string) string { return intaketest.Encode(t, charmap.KOI8R, v) }
	type sent struct {
		site, email, method, contentType, query string
	}
	email := func(i int) string { return fmt.Sprintf("dropin%s-%d@example.com", run, i) }
	forms := []sent{
		{"oldshop", email(1), "POST", "application/x-www-form-urlencoded; charset=windows-1251",
			intaketest.Form("name", w1251(name), "tel", "+7 900 100-00-01", "e-mail", email(1), "message", w1251(message), "favourite_colour", w1251(colour))},
		{"oldshop", email(2), "GET", "",
			intaketest.Form("fio", w1251(name), "telephone", "+7 900 100-00-02", "email", email(2), "comment", w1251(message), "favourite_colour", w1251(colour))},
		{"koi" + run, email(3), "POST", "application/x-www-form-urlencoded; charset=koi8-r",
			intaketest.Form("name", koi(name), "tel", "+7 900 100-00-03", "email", email(3), "text", koi(message), "favourite_colour", koi(colour))},
		{"koi" + run, email(4), "GET", "",
			intaketest.Form("name", koi(name), "tel", "+7 900 100-00-04", "email", email(4), "message", koi(message), "favourite_colour", koi(colour))},
		{"utm" + run, email(5), "GET", "", intaketest.Form("name", name, "email", email(5), "message", message)},
		{"partner" + run, email(6), "GET", "", intaketest.Form("name", name, "email", email(6), "message", message)},
		{"desc" + run, email(7), "GET", "", intaketest.Form("name", w1251(name), "email", email(7), "message", w1251(message))},
	}
	for _, f := range forms {
		q := "login=" + url.QueryEscape(f.site) + "&apikey=" + url.QueryEscape(siteKeyOf(f.site)) + "&action=add&" + f.query
		req := intaketest.DropInPost(f.contentType, q)
		if f.method == "GET" {
			req = intaketest.DropInGet(q)
		}
		if body := serve(h, req); !strings.Contains(body, `"Success"`) {
			t.Fatalf("%s %s: %s", f.site, f.method, body)
		}
	}
	// And one lead through the JSON API, for a site filed by path.
	jreq := httptest.NewRequest(http.MethodPost, "/v1/leads", strings.NewReader(fmt.Sprintf(`{"title":%q,"email":%q}`, name, email(8))))
	jreq.Header.Set("Content-Type", "application/json")
	jreq.Header.Set("Authorization", "Bearer "+siteKeyOf("oldshopjson"+run))
	if body := serve(h, jreq); !strings.Contains(body, `"queued"`) {
		t.Fatalf("JSON API: %s", body)
	}

	// A windows-1251 form on a UTF-8 site that declares nothing: kept,
	// read as what it looks like, and the answer says so.
	kept := intaketest.DropInGet("login=partner" + run + "&apikey=" + url.QueryEscape(siteKeyOf("partner"+run)) +
		"&action=add&" + intaketest.Form("name", w1251(name), "email", email(9), "message", w1251(message)))
	if body := serve(h, kept); !strings.Contains(body, "was kept, read as windows-1251") {
		t.Fatalf("undeclared windows-1251: %s", body)
	}

	rows := waitRows(t, s, run, len(forms)+2)
	if r := rows[email(9)]; r.title != name || !strings.HasPrefix(r.description, message) {
		t.Errorf("undeclared windows-1251 lead: title %q description %q, want %q %q", r.title, r.description, name, message)
	}
	for i, f := range forms {
		r, ok := rows[f.email]
		if !ok {
			t.Errorf("lead %d (%s %s) not in the CRM", i+1, f.site, f.method)
			continue
		}
		t.Logf("lead %d %s %s: %q", i+1, f.site, f.method, r)
		if r.title != name || !strings.HasPrefix(r.description, message) {
			t.Errorf("lead %d (%s %s): title %q description %q, want %q %q", i+1, f.site, f.method, r.title, r.description, name, message)
		}
		if i < 4 && (!strings.Contains(r.description, "\nfavourite_colour: "+colour) || !strings.HasPrefix(r.phone, "+7 900 100-00-0")) {
			t.Errorf("lead %d (%s %s): phone %q description %q, want the phone and the unknown field's line", i+1, f.site, f.method, r.phone, r.description)
		}
		switch site := f.site; site {
		case "oldshop":
			if r.sourceName != "oldshop" || strings.Contains(r.description, "Site: ") {
				t.Errorf("lead %d: source %q, description %q; want source oldshop and no site line", i+1, r.sourceName, r.description)
			}
		case "utm" + run:
			// The CRM keeps no utm_source of its own and has no source
			// with this one: the site is lost. README says so.
			if r.utmSource != "" || r.sourceID != "0" {
				t.Errorf("utm_source attribution: utm_source %q source %s; the CRM was expected to file it nowhere", r.utmSource, r.sourceID)
			}
		case "partner" + run:
			if r.partner != "0" {
				t.Errorf("partner attribution: partner %q; the CRM was expected to store 0 (no partner client)", r.partner)
			}
		default:
			if !strings.HasSuffix(r.description, "\nSite: "+site) {
				t.Errorf("lead %d: description %q, want the line Site: %s", i+1, r.description, site)
			}
		}
	}
	if r := rows[email(8)]; r.sourceName != "oldshopjson"+run || r.title != name {
		t.Errorf("JSON API lead: source %q title %q, want oldshopjson%s %q", r.sourceName, r.title, run, name)
	}
}

// siteKeyOf is the relay key of a test site.
func siteKeyOf(site string) string { return "key-" + site + "-0123456789abcdef" }

// startRelayOn runs intake and one worker in this process against the real
// CRM's v2, on a private Redis, and returns the intake handler.
func startRelayOn(t *testing.T, s settings, sites map[string]intake.SiteSettings) http.Handler {
	t.Helper()
	crm, err := crmclient.New(s.url, s.login, s.apikey, crmclient.WithAPIVersion(crmclient.V2))
	if err != nil {
		t.Fatal(err)
	}
	o := worker.Options{Concurrency: 2, CRMTimeout: 20 * time.Second, RetryInitial: 100 * time.Millisecond,
		RetryMaxDelay: time.Second, BreakerThreshold: 1000, ShutdownTimeout: 10 * time.Second, PollInterval: 50 * time.Millisecond}
	pub := intaketest.StartDelivery(t, crm, o)
	keys := map[string]string{}
	for site := range sites {
		keys[site] = siteKeyOf(site)
	}
	return intake.New(intake.Options{Sites: keys, SiteSettings: sites}, pub, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
}

func serve(h http.Handler, req *http.Request) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// crmRow is a lead as MariaDB holds it.
type crmRow struct {
	title, phone, description, utmSource, partner, sourceID, sourceName string
}

// waitRows waits (bounded) until n leads of the run are in the CRM's
// database, by e-mail, and returns them.
func waitRows(t *testing.T, s settings, run string, n int) map[string]crmRow {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows := sql(t, s, fmt.Sprintf("SELECT l.email, l.title, IFNULL(l.phone,''), REPLACE(IFNULL(l.description,''), CHAR(10), '\\\\n'), IFNULL(l.utm_source,''), "+
			"IFNULL(l.partner,0), IFNULL(l.clientpath,0), IFNULL(p.name,'') FROM %[1]sleads l LEFT JOIN %[1]sclientpath p ON p.id = l.clientpath "+
			"WHERE l.email LIKE 'dropin%[2]s-%%'", s.prefix, run))
		out := map[string]crmRow{}
		for _, r := range rows {
			if len(r) == 8 {
				out[r[0]] = crmRow{title: r[1], phone: r[2], description: unescapeMySQL(r[3]), utmSource: r[4], partner: r[5], sourceID: r[6], sourceName: r[7]}
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// unescapeMySQL turns the \n the query wrote for each newline back (sql
// splits its output into rows at newlines).
func unescapeMySQL(v string) string { return strings.ReplaceAll(v, `\n`, "\n") }
