package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v2"

	"leadrelay/intake"
	"leadrelay/lead"
)

// Site is one site allowed to send leads, with its settings: from the
// sites file (its YAML names in parentheses) or from LEADRELAY_SITES,
// LEADRELAY_SITE_ORIGINS and LEADRELAY_SITE_SECRETS.
type Site struct {
	// Name is the site's name: letters, digits, '.', '-', '_' and '@', at
	// most 64 (an old SalesMan login such as info@shop.example works).
	Name string
	// Keys (keys) are the site's secret relay keys, at least 16
	// characters each: one, or two while a key is rotated (both work until
	// the old one is removed). They submit leads and read their status, so
	// they stay on the site's server. No two sites share a key, and none is
	// the CRM's. Secret.
	Keys []string
	// PublishableKeys (publishable_keys) are the site's keys for a page in
	// a browser, where anyone can read them: one, or two while one is
	// rotated, checked as Keys are. They only submit leads (JSON API,
	// drop-in); a status read or a batch with one gets 403, and a repeat is
	// answered as a new lead. Optional; a site needs a key of either kind.
	PublishableKeys []string
	// Origins (origins) are the browser origins allowed to send the site's
	// leads (CORS), as scheme://host[:port]. Empty: no CORS.
	Origins []string
	// Secret (secret), when set, makes the site sign every request with
	// HMAC-SHA256 (X-LeadRelay-Signature): at least MinSiteSecretLen
	// bytes, and no site's key. Secret.
	Secret string
	// Charset (charset, default UTF-8) is how the drop-in reads the site's
	// requests that declare no charset: one of intake.CharsetNames
	// (windows-1251, koi8-r, …).
	Charset string
	// Fields (fields) maps the names the site's forms give their fields to
	// lead fields (lead.Fields), {fio: title}, for the drop-in.
	Fields map[string]string
	// Attribution (attribution, default description) is the CRM field that
	// names the site in each lead: description, path, utm_source or partner.
	Attribution lead.Attribution
	// RateLimit (rate_limit, default LEADRELAY_SITE_RATE_LIMIT) is the lead
	// requests per second the site may make; 0 means no limit.
	RateLimit float64
}

// Sites are the sites allowed to send leads, by name. Secret: they hold
// the keys.
type Sites map[string]Site

// Names returns the sites' names, sorted.
func (s Sites) Names() []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// MaxSiteKeys is the most keys a site holds: its key, and its next one
// during a rotation.
const MaxSiteKeys = 2

// MinSiteKeyLen is the shortest site key.
const MinSiteKeyLen = 16

// The variables of the sites when they come from the environment.
const (
	sitesVar       = "LEADRELAY_SITES"
	siteOriginsVar = "LEADRELAY_SITE_ORIGINS"
	siteSecretsVar = "LEADRELAY_SITE_SECRETS"
	sitesFileVar   = "LEADRELAY_SITES_FILE"
)

// sites resolves the Intake section's sites: from the sites file, or from
// the LEADRELAY_SITES* variables, never both, each checked alike.
func (p *parser) sites(c *Config, keys map[string]string, origins map[string][]string, secrets map[string]string) Sites {
	if c.Intake.SitesFile != "" {
		if len(keys) > 0 || len(origins) > 0 || len(secrets) > 0 {
			p.fail(sitesFileVar, "and LEADRELAY_SITES (or LEADRELAY_SITE_ORIGINS, LEADRELAY_SITE_SECRETS) are both set; "+
				"set one: the sites file holds every site's keys, origins and secret")
			return Sites{}
		}
		sites, warnings, problems := c.readSitesFile(c.Intake.SitesFile)
		p.errs = append(p.errs, problems...)
		p.warnings = append(p.warnings, warnings...)
		return sites
	}
	for site := range origins {
		if _, ok := keys[site]; !ok {
			p.fail(siteOriginsVar, fmt.Sprintf("names site %q, which is not in LEADRELAY_SITES", site))
		}
	}
	for site := range secrets {
		if _, ok := keys[site]; !ok {
			p.fail(siteSecretsVar, fmt.Sprintf("names site %q, which is not in LEADRELAY_SITES", site))
		}
	}
	sites := Sites{}
	for name, key := range keys {
		sites[name] = Site{Name: name, Keys: []string{key}, Origins: origins[name], Secret: secrets[name],
			Attribution: lead.DefaultAttribution, RateLimit: c.Intake.SiteRateLimit}
	}
	envVar := map[string]string{"keys": sitesVar, "secret": siteSecretsVar}
	// The demo's data are throw-away: its variables may hold placeholders.
	c.checkSites(sites, !c.EmbeddedRedis(), func(field, text string) { p.fail(envVar[field], text) })
	return sites
}

// LoadSitesFile reads and checks the sites file at path as Load does with
// the rest of c's settings (the default rate limit, the CRM key no site
// may use). It returns every problem at once, each a *Problem of
// LEADRELAY_SITES_FILE naming path; warnings are findings that do not
// refuse the file (every user of the host may read it).
func (c Config) LoadSitesFile(path string) (Sites, []string, error) {
	sites, warnings, problems := c.readSitesFile(path)
	if len(problems) > 0 {
		return nil, warnings, problems.Err()
	}
	return sites, warnings, nil
}

// sitesFile is the sites file's schema; see README.md, "The sites file".
type sitesFile struct {
	Sites map[string]*siteEntry `yaml:"sites"`
}

type siteEntry struct {
	Keys        []string          `yaml:"keys"`
	Publishable []string          `yaml:"publishable_keys"`
	Origins     []string          `yaml:"origins"`
	Secret      string            `yaml:"secret"`
	Charset     string            `yaml:"charset"`
	Fields      map[string]string `yaml:"fields"`
	Attribution string            `yaml:"attribution"`
	RateLimit   *float64          `yaml:"rate_limit"`
}

// ParseSitesFile checks the contents b of the sites file path, as
// LoadSitesFile does, for a caller that read the file itself (to know
// exactly which contents it applied).
func (c Config) ParseSitesFile(path string, b []byte) (Sites, error) {
	sites, problems := c.parseSitesFile(path, b)
	if len(problems) > 0 {
		return nil, problems.Err()
	}
	return sites, nil
}

// readSitesFile reads, parses and checks the file at path.
func (c Config) readSitesFile(path string) (Sites, []string, Problems) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, Problems{{Var: sitesFileVar, Text: fmt.Sprintf("%s: cannot be read: %v", path, errors.Unwrap(err))}}
	}
	var warnings []string
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o004 != 0 {
		warnings = append(warnings, fmt.Sprintf("%s %s holds the sites' keys and is readable by every user of the host; chmod o-r it", sitesFileVar, path))
	}
	sites, problems := c.parseSitesFile(path, b)
	return sites, warnings, problems
}

// parseSitesFile parses and checks the contents of the sites file path.
func (c Config) parseSitesFile(path string, b []byte) (Sites, Problems) {
	var problems Problems
	report := func(text string) { problems = append(problems, &Problem{Var: sitesFileVar, Text: path + ": " + text}) }
	sites := c.parseSites(b, report)
	c.checkSites(sites, true, func(_, text string) { report(text) })
	sort.Slice(problems, func(i, j int) bool { return problems[i].Text < problems[j].Text })
	return sites, problems
}

// parseSites decodes the file strictly (unknown names and repeated keys
// are problems) and reports what the types cannot hold.
func (c Config) parseSites(b []byte, report func(string)) Sites {
	var f sitesFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// A syntax error: the decoder stops at the first; its text
			// quotes no value.
			report(strings.TrimPrefix(err.Error(), "yaml: "))
			return Sites{}
		}
		for _, e := range te.Errors {
			report(yamlProblem(e))
		}
	}
	if len(f.Sites) == 0 {
		report("names no site: it needs sites: {NAME: {keys: [KEY]}, …}")
	}
	sites := Sites{}
	for name, e := range f.Sites {
		if e == nil {
			e = &siteEntry{}
		}
		s := Site{Name: name, Keys: e.Keys, PublishableKeys: e.Publishable, Secret: e.Secret, Charset: e.Charset, Fields: e.Fields, RateLimit: c.Intake.SiteRateLimit}
		if e.RateLimit != nil {
			s.RateLimit = *e.RateLimit
		}
		var err error
		if s.Attribution, err = lead.ParseAttribution(e.Attribution); err != nil {
			s.Attribution = lead.DefaultAttribution // reported by checkSites
		}
		for _, o := range e.Origins {
			norm, ok := parseOrigin(o)
			if !ok {
				report(fmt.Sprintf("origin %q of site %q must be like https://www.example.com", o, name))
				continue
			}
			s.Origins = append(s.Origins, norm)
		}
		sites[name] = s
		c.checkSiteEntry(s, e, report)
	}
	return sites
}

// yamlProblem is a decoder's type error in the file's words, not Go's:
// `line 4: field kyes not found in type config.siteEntry` becomes
// `line 4: kyes is not a setting of a site`.
func yamlProblem(e string) string {
	for _, t := range []string{"siteEntry", "sitesFile"} {
		if before, ok := strings.CutSuffix(e, " in type config."+t); ok {
			if line, field, ok := strings.Cut(before, ": field "); ok {
				where := map[string]string{"siteEntry": "a site (keys, publishable_keys, origins, secret, charset, fields, attribution, rate_limit)",
					"sitesFile": "the file (sites)"}[t]
				return fmt.Sprintf("%s: %s is not a setting of %s", line, strings.TrimSuffix(field, " not found"), where)
			}
		}
	}
	// A value of the wrong type: the decoder quotes it, and it may be a
	// key, so only its place is named.
	if line, _, ok := strings.Cut(e, ": cannot unmarshal"); ok {
		return line + ": a value of the wrong type (keys and origins are lists, fields a map, rate_limit a number)"
	}
	return e
}

// checkSiteEntry reports what only the file can get wrong: a name, the
// number of keys, a charset, a field map, an attribution, a rate.
func (c Config) checkSiteEntry(s Site, e *siteEntry, report func(string)) {
	if !lead.ValidSiteName(s.Name) {
		report(fmt.Sprintf("site name %q may hold only letters, digits, '.', '-', '_' and '@' (at most 64)", s.Name))
	}
	switch n, p := len(s.Keys), len(s.PublishableKeys); {
	case n+p == 0:
		report(fmt.Sprintf("site %q has no key (keys: [KEY], or publishable_keys: [KEY] for a browser form alone)", s.Name))
	case n > MaxSiteKeys:
		report(fmt.Sprintf("site %q has %d keys; give one, or two while a key is rotated", s.Name, n))
	case p > MaxSiteKeys:
		report(fmt.Sprintf("site %q has %d publishable keys; give one, or two while a key is rotated", s.Name, p))
	}
	settings := intake.SiteSettings{Charset: s.Charset, Fields: s.Fields, Attribution: lead.Attribution(e.Attribution)}
	if err := settings.Validate(); err != nil {
		for _, e := range unjoin(err) {
			report(fmt.Sprintf("site %q: %v", s.Name, e))
		}
	}
	if s.RateLimit < 0 {
		report(fmt.Sprintf("rate_limit of site %q must not be negative (0 is no limit)", s.Name))
	}
}

// unjoin returns the errors errors.Join put together, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// checkSites reports what is wrong with any set of sites, from the file
// or the environment: short, shared or (when strict) placeholder keys, the
// CRM's key, weak secrets. field is "keys" or "secret", for the
// environment's variables. No text quotes a key or a secret.
func (c Config) checkSites(sites Sites, strict bool, report func(field, text string)) {
	keyOwner := map[string]string{}
	for _, name := range sites.Names() {
		for _, key := range slices.Concat(sites[name].Keys, sites[name].PublishableKeys) {
			switch {
			case len(key) < MinSiteKeyLen:
				report("keys", fmt.Sprintf("key of site %q is shorter than %d characters", name, MinSiteKeyLen))
			case strict && placeholder(key):
				report("keys", fmt.Sprintf("key of site %q is a placeholder (change-me…); generate one, e.g. openssl rand -hex 24", name))
			}
			if c.CRM.APIKey != "" && key == c.CRM.APIKey {
				report("keys", fmt.Sprintf("site %q uses the CRM's API key; give every site its own key", name))
			}
			switch other, dup := keyOwner[key]; {
			case dup && other == name:
				report("keys", fmt.Sprintf("site %q lists one key twice", name))
			case dup:
				report("keys", fmt.Sprintf("sites %q and %q share one key; give every site its own key", other, name))
			}
			keyOwner[key] = name
		}
	}
	for _, name := range sites.Names() {
		if secret := sites[name].Secret; secret != "" {
			c.checkSiteSecret(name, secret, keyOwner, strict, func(text string) { report("secret", text) })
		}
	}
}

// MinSiteSecretLen is the shortest site secret: 32 bytes, the size of the
// HMAC-SHA256 key it is.
const MinSiteSecretLen = 32

// checkSiteSecret refuses a site secret shorter than MinSiteSecretLen, a
// placeholder, or equal to a key (a site's key is sent with every request,
// so the secret would be no secret), naming the site, never the value.
func (c Config) checkSiteSecret(site, secret string, keyOwner map[string]string, strict bool, report func(string)) {
	if strict && placeholder(secret) {
		report(fmt.Sprintf("secret of site %q is a placeholder (change-me…)", site))
	}
	if len(secret) < MinSiteSecretLen {
		report(fmt.Sprintf("secret of site %q is shorter than %d bytes; generate one, e.g. openssl rand -hex 32", site, MinSiteSecretLen))
	}
	if other, ok := keyOwner[secret]; ok {
		report(fmt.Sprintf("secret of site %q equals the key of site %q; a secret is never sent, a key is with every request", site, other))
	}
	if c.CRM.APIKey != "" && secret == c.CRM.APIKey {
		report(fmt.Sprintf("secret of site %q is the CRM's API key; generate one of its own", site))
	}
}

// parseOrigin checks a browser origin and returns it as scheme://host[:port].
func parseOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}
