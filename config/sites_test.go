package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"leadrelay/lead"
)

const (
	shopKey    = "shop-key-0123456789abcdef"
	shopNext   = "shop-next-0123456789abcdef"
	formKey    = "form-public-0123456789abcdef"
	blogKey    = "blog-key-0123456789abcdef"
	shopSecret = "shop-secret-0123456789abcdef0123456789"
)

// writeSites writes a sites file and returns its path.
func writeSites(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// prod is a production environment (not the embedded demo) with env added.
func prod(env map[string]string) map[string]string {
	m := map[string]string{"LEADRELAY_REDIS_URL": "redis://127.0.0.1:6379/0"}
	for k, v := range env {
		m[k] = v
	}
	return m
}

// TestSitesFile: the documented schema, every setting of a site read and
// its defaults filled in.
func TestSitesFile(t *testing.T) {
	t.Parallel()
	path := writeSites(t, `
# Two sites; shop is rotating its key.
sites:
  shop:
    keys: [`+shopKey+`, `+shopNext+`]
    origins: [https://shop.example, "http://localhost:3000/"]
    secret: `+shopSecret+`
    charset: windows-1251
    fields: {fio: title, tel: phone, comment: description}
    attribution: utm_source
    rate_limit: 2.5
  info@blog.example:
    keys:
      - `+blogKey+`
  form:                        # a browser form alone: a publishable key
    publishable_keys: [`+formKey+`]
`)
	c := mustLoad(t, prod(map[string]string{"LEADRELAY_SITES_FILE": path, "LEADRELAY_SITE_RATE_LIMIT": "7"}))
	want := Sites{
		"shop": {Name: "shop", Keys: []string{shopKey, shopNext}, Origins: []string{"https://shop.example", "http://localhost:3000"},
			Secret: shopSecret, Charset: "windows-1251", Fields: map[string]string{"fio": "title", "tel": "phone", "comment": "description"},
			Attribution: lead.AttributeUTMSource, RateLimit: 2.5},
		"info@blog.example": {Name: "info@blog.example", Keys: []string{blogKey}, Attribution: lead.DefaultAttribution, RateLimit: 7},
		"form":              {Name: "form", PublishableKeys: []string{formKey}, Attribution: lead.DefaultAttribution, RateLimit: 7},
	}
	if !reflect.DeepEqual(c.Intake.Sites, want) {
		t.Errorf("Sites = %+v\nwant %+v", c.Intake.Sites, want)
	}
	if c.Intake.SitesFile != path || c.Intake.SitesPoll.String() != "2s" {
		t.Errorf("SitesFile %q, SitesPoll %s", c.Intake.SitesFile, c.Intake.SitesPoll)
	}
	// The same file through LoadSitesFile (ctl sites check, a reload).
	sites, warnings, err := c.LoadSitesFile(path)
	if err != nil || len(warnings) > 0 || !reflect.DeepEqual(sites, want) {
		t.Errorf("LoadSitesFile = %v, %v, %v", sites, warnings, err)
	}
}

// TestSitesFileRefused: a file with problems is refused whole, with every
// problem named (file, site, line) and no key or secret quoted.
func TestSitesFileRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		want       []string
	}{
		{"every problem at once", `
sites:
  shop:
    keys: [short]
    secret: short-secret
    charset: cp437
    fields: {fio: fullname}
    attribution: phone
    rate_limit: -1
  blog:
    keys: []
`, []string{`key of site "shop" is shorter than 16 characters`, `secret of site "shop" is shorter than 32 bytes`,
			`site "shop": charset "cp437" is none of`, `site "shop": fields: "fio" maps to "fullname", which is no lead field`,
			`site "shop": attribution "phone" is none of`, `rate_limit of site "shop" must not be negative`,
			`site "blog" has no key`}},
		{"three keys", "sites:\n  shop:\n    keys: [" + shopKey + ", " + shopNext + ", " + blogKey + "]\n",
			[]string{`site "shop" has 3 keys; give one, or two while a key is rotated`}},
		{"a key shared by two sites", "sites:\n  shop: {keys: [" + shopKey + "]}\n  blog: {keys: [" + shopKey + "]}\n",
			[]string{`sites "blog" and "shop" share one key`}},
		{"a publishable key that is another site's key", "sites:\n  shop: {keys: [" + shopKey + "]}\n  blog: {keys: [" + blogKey + "], publishable_keys: [" + shopKey + "]}\n",
			[]string{`sites "blog" and "shop" share one key`}},
		{"a publishable key that is the site's secret key", "sites:\n  shop: {keys: [" + shopKey + "], publishable_keys: [" + shopKey + "]}\n",
			[]string{`site "shop" lists one key twice`}},
		{"three publishable keys", "sites:\n  shop:\n    publishable_keys: [" + shopKey + ", " + shopNext + ", " + blogKey + "]\n",
			[]string{`site "shop" has 3 publishable keys`}},
		{"a short publishable key", "sites:\n  shop: {keys: [" + shopKey + "], publishable_keys: [short]}\n",
			[]string{`key of site "shop" is shorter than 16 characters`}},
		{"a key listed twice", "sites:\n  shop: {keys: [" + shopKey + ", " + shopKey + "]}\n",
			[]string{`site "shop" lists one key twice`}},
		{"the secret is a key", "sites:\n  shop: {keys: [" + shopKey + "], secret: " + blogKey + "0123456}\n  blog: {keys: [" + blogKey + "0123456]}\n",
			[]string{`secret of site "shop" equals the key of site "blog"`}},
		{"a placeholder key", "sites:\n  shop: {keys: [change-me-shop-site-key]}\n",
			[]string{`key of site "shop" is a placeholder`}},
		{"a misspelt setting", "sites:\n  shop:\n    kyes: [" + shopKey + "]\n",
			[]string{`line 3: kyes is not a setting of a site`, `site "shop" has no key`}},
		{"a misspelt top level", "site:\n  shop: {keys: [" + shopKey + "]}\n",
			[]string{`line 1: site is not a setting of the file (sites)`, "names no site"}},
		{"a site twice", "sites:\n  shop: {keys: [" + shopKey + "]}\n  shop: {keys: [" + shopNext + "]}\n",
			[]string{`key "shop" already set in map`}},
		{"a wrong type", "sites:\n  shop: {keys: " + shopKey + "}\n",
			[]string{`line 2: a value of the wrong type`}},
		{"a bad origin", "sites:\n  shop: {keys: [" + shopKey + "], origins: [shop.example]}\n",
			[]string{`origin "shop.example" of site "shop" must be like https://www.example.com`}},
		{"a bad name", "sites:\n  shop/1: {keys: [" + shopKey + "]}\n", []string{`site name "shop/1" may hold only`}},
		{"empty", "", []string{"names no site"}},
		{"not YAML", "sites: [\n", []string{"line 1: did not find expected node content"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeSites(t, tc.file)
			loadFails(t, prod(map[string]string{"LEADRELAY_SITES_FILE": path}), append(tc.want, "LEADRELAY_SITES_FILE "+path+": "),
				[]string{shopKey, shopNext, blogKey, shopSecret, "short-secret", "change-me-shop"})
			c, _ := LoadLenient(env(prod(nil)))
			if _, _, err := c.LoadSitesFile(path); err == nil {
				t.Error("LoadSitesFile accepted the file")
			}
		})
	}
}

// TestSitesFileOrVariables: the sites come from the file or from the
// variables, never both; the variables keep working alone and are
// checked as the file is.
func TestSitesFileOrVariables(t *testing.T) {
	t.Parallel()
	path := writeSites(t, "sites:\n  shop: {keys: ["+shopKey+"]}\n")
	for _, v := range []string{"LEADRELAY_SITES", "LEADRELAY_SITE_ORIGINS", "LEADRELAY_SITE_SECRETS"} {
		_, err := Load(env(prod(map[string]string{"LEADRELAY_SITES_FILE": path, "LEADRELAY_SITES": "blog=" + blogKey,
			v: map[string]string{"LEADRELAY_SITES": "blog=" + blogKey, "LEADRELAY_SITE_ORIGINS": "blog=https://blog.example",
				"LEADRELAY_SITE_SECRETS": "blog=" + shopSecret}[v]})))
		if err == nil || !strings.Contains(err.Error(), "LEADRELAY_SITES_FILE and LEADRELAY_SITES (or LEADRELAY_SITE_ORIGINS, LEADRELAY_SITE_SECRETS) are both set") {
			t.Errorf("file and %s: %v", v, err)
		}
	}
	c := mustLoad(t, prod(map[string]string{"LEADRELAY_SITES": "shop=" + shopKey, "LEADRELAY_SITE_SECRETS": "shop=" + shopSecret,
		"LEADRELAY_SITE_ORIGINS": "shop=https://shop.example", "LEADRELAY_SITE_RATE_LIMIT": "3"}))
	want := Sites{"shop": {Name: "shop", Keys: []string{shopKey}, Origins: []string{"https://shop.example"}, Secret: shopSecret,
		Attribution: lead.DefaultAttribution, RateLimit: 3}}
	if !reflect.DeepEqual(c.Intake.Sites, want) {
		t.Errorf("Sites from the variables = %+v, want %+v", c.Intake.Sites, want)
	}
}

// TestSitesFileReadableByAll: a sites file every user may read is loaded,
// with a warning (it holds the keys).
func TestSitesFileReadableByAll(t *testing.T) {
	t.Parallel()
	path := writeSites(t, "sites:\n  shop: {keys: ["+shopKey+"]}\n")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, prod(map[string]string{"LEADRELAY_SITES_FILE": path}))
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "readable by every user") {
		t.Errorf("Warnings = %q", c.Warnings)
	}
	if _, err := Load(env(prod(map[string]string{"LEADRELAY_SITES_FILE": path + ".missing"}))); err == nil ||
		!strings.Contains(err.Error(), "LEADRELAY_SITES_FILE "+path+".missing: cannot be read") {
		t.Errorf("missing file: %v", err)
	}
}
