package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"leadrelay/lead"
)

// parser reads typed values and collects every problem instead of stopping
// at the first.
type parser struct {
	getenv func(string) string
	errs   Problems
	// vars are the variables read, in order, with their defaults (Vars).
	vars []Var
	// warnings are findings that do not stop a start (Config.Warnings).
	warnings []string
	// section is the Config section being read (Var.Section).
	section string
	// resolved are the secrets' values, read from NAME or NAME_FILE.
	resolved map[string]string
	// siteKeys, siteOrigins and siteSecrets are the LEADRELAY_SITES*
	// variables, until p.sites makes them Config.Intake.Sites.
	siteKeys, siteSecrets map[string]string
	siteOrigins           map[string][]string
}

func (p *parser) fail(name, problem string) {
	p.errs = append(p.errs, &Problem{Var: name, Text: problem})
}

// known records that name is a setting, with its default as text.
func (p *parser) known(name, def string, secret bool) {
	p.vars = append(p.vars, Var{Name: name, Default: def, Secret: secret, Section: p.section})
}

// raw is the trimmed value of name, unrecorded: a secret's from its file
// when NAME_FILE gave it.
func (p *parser) raw(name string) string {
	if v, ok := p.resolved[name]; ok {
		return v
	}
	return strings.TrimSpace(p.getenv(name))
}

// got quotes the value of a non-secret setting for an error: `, got "x"`.
func (p *parser) got(name string) string {
	if v := p.raw(name); v != "" {
		return ", got " + strconv.Quote(v)
	}
	return ""
}

// gotURL quotes a URL setting with its password hidden.
func (p *parser) gotURL(name string) string {
	v := p.raw(name)
	if u, err := url.Parse(v); err == nil && u.User != nil {
		v = u.Redacted()
	} else if err != nil || strings.Contains(v, "@") {
		return ", got a value that is not a URL"
	}
	return ", got " + strconv.Quote(v)
}

func (p *parser) str(name, def string) string {
	p.known(name, def, false)
	if v := p.raw(name); v != "" {
		return v
	}
	return def
}

func (p *parser) int(name string, def int) int {
	return typed(p, name, def, strconv.Itoa(def), strconv.Atoi, "a whole number")
}

func (p *parser) float(name string, def float64) float64 {
	parse := func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }
	return typed(p, name, def, strconv.FormatFloat(def, 'g', -1, 64), parse, "a number")
}

func (p *parser) bool(name string, def bool) bool {
	return typed(p, name, def, strconv.FormatBool(def), strconv.ParseBool, "true or false")
}

func (p *parser) dur(name string, def time.Duration) time.Duration {
	return typed(p, name, def, shortDuration(def), time.ParseDuration, "a duration such as 30s or 1h")
}

// typed reads the setting name with parse: def when it is unset, and def
// with a problem saying what it must be (want) when parse refuses it.
// shown is def as Vars lists it.
func typed[T any](p *parser, name string, def T, shown string, parse func(string) (T, error), want string) T {
	p.known(name, shown, false)
	v := p.raw(name)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("must be %s, got %q", want, v))
		return def
	}
	return x
}

func (p *parser) positive(name string, v float64) {
	if v <= 0 {
		p.fail(name, "must be greater than zero"+p.got(name))
	}
}

func (p *parser) notNegative(name string, v float64) {
	if v < 0 {
		p.fail(name, "must not be negative"+p.got(name))
	}
}

// secret reads a secret setting: NAME, or the contents of the file named
// by NAME_FILE (a systemd credential, a Docker or Kubernetes secret), never
// both. Every secret has the _FILE variant through this one function, and
// every reader of NAME (raw, pairsOf, gotURL) sees the file's contents. The
// value never appears in an error.
func (p *parser) secret(name string) string {
	p.known(name, "", true)
	p.known(name+"_FILE", "", false)
	v, file := strings.TrimSpace(p.getenv(name)), p.raw(name+"_FILE")
	switch {
	case v != "" && file != "":
		p.fail(name, "and "+name+"_FILE are both set; set one")
		v = ""
	case file != "":
		v = p.readSecretFile(name, file)
	}
	if p.resolved == nil {
		p.resolved = map[string]string{}
	}
	p.resolved[name] = v
	return v
}

// readSecretFile reads the file of NAME_FILE, trimmed, and warns when
// every user of the host may read it.
func (p *parser) readSecretFile(name, file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		p.fail(name+"_FILE", fmt.Sprintf("cannot be read: %v", errors.Unwrap(err)))
		return ""
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o004 != 0 {
		p.warnings = append(p.warnings, fmt.Sprintf("%s_FILE %s is readable by every user of the host; chmod o-r it", name, file))
	}
	return strings.TrimSpace(string(b))
}

// pairs parses "a=1,b=2" of a secret setting. Values may contain '='; the
// error never quotes a value.
func (p *parser) pairs(name string, withFile bool) map[string]string {
	if withFile {
		p.secret(name)
	} else {
		p.known(name, "", true)
	}
	return p.pairsOf(name)
}

func (p *parser) pairsOf(name string) map[string]string {
	out := map[string]string{}
	v := p.raw(name)
	if v == "" {
		return out
	}
	for i, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		switch {
		case !ok || k == "" || val == "":
			p.fail(name, fmt.Sprintf("entry %d is not name=value", i+1))
		case !lead.ValidSiteName(k):
			p.fail(name, fmt.Sprintf("site name %q may hold only letters, digits, '.', '-', '_' and '@'", k))
		case out[k] != "":
			p.fail(name, fmt.Sprintf("names site %q twice", k))
		default:
			out[k] = val
		}
	}
	return out
}

// list parses "a,b,c", dropping empty entries.
func (p *parser) list(name string) []string {
	var out []string
	for _, item := range strings.Split(p.str(name, ""), ",") {
		if item = strings.ToLower(strings.TrimSpace(item)); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (p *parser) origins(name string) map[string][]string {
	out := map[string][]string{}
	p.known(name, "", false)
	for site, list := range p.pairsOf(name) {
		for _, o := range strings.Split(list, "|") {
			norm, ok := parseOrigin(o)
			if !ok {
				p.fail(name, fmt.Sprintf("origin %q of site %q must be like https://www.example.com", o, site))
				continue
			}
			out[site] = append(out[site], norm)
		}
	}
	return out
}

// prefixes parses "10.0.0.0/8,192.0.2.7": CIDR prefixes or single addresses.
func (p *parser) prefixes(name string) []netip.Prefix {
	p.known(name, "", false)
	var out []netip.Prefix
	v := p.raw(name)
	if v == "" {
		return nil
	}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if pfx, err := netip.ParsePrefix(item); err == nil {
			out = append(out, pfx.Masked())
		} else if a, err := netip.ParseAddr(item); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			p.fail(name, fmt.Sprintf("entry %q is not an address or CIDR prefix such as 10.0.0.0/8", item))
		}
	}
	return out
}
