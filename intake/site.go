package intake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"leadrelay/lead"
	"leadrelay/producer"
)

// SiteSettings shape one site's leads: how the drop-in reads its forms and
// how its leads name it in the CRM. The zero value is the defaults: UTF-8,
// the alias table, lead.DefaultAttribution.
type SiteSettings struct {
	// Charset is the charset of the site's drop-in requests that declare
	// none (every GET query, and POST forms without a charset in their
	// Content-Type or a _charset_ field): one of CharsetNames or another
	// common label of them (cp1251, koi8_r, …). "" is UTF-8.
	Charset string
	// Fields maps the names the site's forms give their fields to lead
	// fields' wire names ({"fio": "title", "name": "company"}), for names
	// the alias table does not know or reads otherwise. It wins over wire
	// names and aliases.
	Fields map[string]string
	// Attribution is how the site's leads name it in the CRM; the zero
	// value is lead.DefaultAttribution.
	Attribution lead.Attribution
}

// Validate returns every problem of s in one error, or nil.
func (s SiteSettings) Validate() error {
	var errs []error
	if _, ok := lookupCharset(s.Charset); s.Charset != "" && !ok {
		errs = append(errs, fmt.Errorf("charset %q is none of %s", s.Charset, strings.Join(CharsetNames, ", ")))
	}
	for _, name := range slices.Sorted(maps.Keys(s.Fields)) {
		field := s.Fields[name]
		switch _, ok := lead.LookupField(field); {
		case name == "":
			errs = append(errs, errors.New("fields: an empty form field name"))
		case !ok:
			errs = append(errs, fmt.Errorf("fields: %q maps to %q, which is no lead field", name, field))
		case name == paramLogin || name == paramAPIKey || name == paramAction || name == paramID:
			errs = append(errs, fmt.Errorf("fields: %q is the drop-in's own parameter", name))
		}
	}
	if _, err := lead.ParseAttribution(string(s.Attribution)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// siteForm is a site's settings as the handler uses them: checked, with
// the defaults filled in.
type siteForm struct {
	charset     charset
	fields      map[string]string
	attribution lead.Attribution
}

// newSiteForms checks each known site's settings. A setting that is not
// valid is logged and its default used: intake never refuses a site's
// leads over its settings (config refuses them when it loads them).
func newSiteForms(settings map[string]SiteSettings, log *zap.Logger) map[string]siteForm {
	out := map[string]siteForm{}
	for site, s := range settings {
		if err := s.Validate(); err != nil {
			log.Warn("site settings not valid; their defaults apply instead", zap.String("site", site), zap.Error(err))
		}
		f := siteForm{charset: utf8Charset, attribution: lead.DefaultAttribution, fields: map[string]string{}}
		if cs, ok := lookupCharset(s.Charset); ok {
			f.charset = cs
		}
		if a, err := lead.ParseAttribution(string(s.Attribution)); err == nil {
			f.attribution = a
		}
		for name, field := range s.Fields {
			if _, ok := lead.LookupField(field); ok && name != "" {
				f.fields[name] = field
			}
		}
		out[site] = f
	}
	return out
}

// defaultSiteForm is a site's siteForm when it has no settings.
var defaultSiteForm = siteForm{charset: utf8Charset, attribution: lead.DefaultAttribution}

// form returns the settings of site, as the request found them.
func (h *handler) form(r *http.Request, site string) siteForm {
	return h.sites(r).form(site)
}

// form returns the settings of site.
func (s *siteSet) form(site string) siteForm {
	if f, ok := s.forms[site]; ok {
		return f
	}
	return defaultSiteForm
}

// attributingPublisher names each lead's site in the CRM field its site's
// settings choose, before it is published: the lead in the task is then
// what the CRM gets, and the worker's look-ups match it.
type attributingPublisher struct {
	Publisher
	dir *Directory
}

// Publish applies the site's attribution, as the request found the
// site's settings, and publishes.
func (p attributingPublisher) Publish(ctx context.Context, site string, l lead.Lead, idempotencyKey string) (producer.Receipt, error) {
	p.dir.sitesOf(ctx).form(site).attribution.Apply(&l, site)
	return p.Publisher.Publish(ctx, site, l, idempotencyKey)
}

// attributed returns pub naming each lead's site (every API, every site).
func attributed(pub Publisher, dir *Directory) Publisher {
	return attributingPublisher{Publisher: pub, dir: dir}
}
