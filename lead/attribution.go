package lead

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Attribution is how a lead names its site in the CRM: which CRM field
// carries the relay's site name. The zero value is DefaultAttribution.
//
// What the real SalesMan does with each (2025.4, v2 add; v1's add shares
// the source look-up):
//
//   - AttributeDescription: a last line "Site: NAME" of the description,
//     stored as sent on both API versions, matched by the worker's
//     content look-ups like the rest of the text.
//   - AttributePath: the client source ("Источник клиента", v2
//     clientpath). The CRM finds a source by the lead's utm_source first,
//     then by name, and creates a missing one: a lead that also carries
//     a utm_source some source already has gets that source, not its
//     site's; concurrent first leads may create the source twice.
//   - AttributeUTMSource: utm_source. The CRM keeps no utm_source of its
//     own: it files the lead under the client source whose utm_source is
//     NAME, and nowhere when there is none (create one per site first).
//   - AttributePartner: partner. The CRM stores the id of a partner
//     client whose web site contains NAME, 0 when there is none.
type Attribution string

// The attributions.
const (
	AttributeDescription Attribution = "description"
	AttributePath        Attribution = "path"
	AttributeUTMSource   Attribution = "utm_source"
	AttributePartner     Attribution = "partner"
)

// DefaultAttribution is the description line: the only way that names the
// site on every CRM without configuring the CRM and without changing its
// lists of sources and partners.
const DefaultAttribution = AttributeDescription

// SiteLinePrefix starts the description line that names the site.
const SiteLinePrefix = "Site: "

// ParseAttribution reads an attribution by name; "" is DefaultAttribution.
func ParseAttribution(s string) (Attribution, error) {
	switch a := Attribution(strings.TrimSpace(s)); a {
	case "":
		return DefaultAttribution, nil
	case AttributeDescription, AttributePath, AttributeUTMSource, AttributePartner:
		return a, nil
	}
	return "", fmt.Errorf("attribution %q is none of description, path, utm_source, partner", s)
}

// Apply names site in l the way a says. A field the lead already fills
// keeps its value (the site chose it), and the site goes to the
// description line instead, so every lead names its site. A description
// too long to take the line loses its end (marked …) rather than the lead
// being refused. Applying twice changes nothing more.
func (a Attribution) Apply(l *Lead, site string) {
	if site == "" {
		return
	}
	var p *string
	switch a {
	case AttributePath:
		p = &l.Path
	case AttributeUTMSource:
		p = &l.UTMSource
	case AttributePartner:
		p = &l.Partner
	}
	switch {
	case p != nil && (*p == "" || *p == site):
		*p = site
	default:
		l.Description = withLine(l.Description, SiteLinePrefix+site, descriptionMaxLen)
	}
}

// descriptionMaxLen is the description's MaxLen in the field table.
var descriptionMaxLen = func() int {
	f, _ := LookupField("description")
	return f.MaxLen
}()

// withLine returns text with line as its last line, unless it is there,
// in at most max characters: the text before the line is cut to fit.
func withLine(text, line string, max int) string {
	switch {
	case text == "":
		return line
	case text == line || strings.HasSuffix(text, "\n"+line):
		return text
	}
	room := max - utf8.RuneCountInString(line) - 1
	if utf8.RuneCountInString(text) > room {
		cut, n := 0, 0
		for i := range text {
			if n == room-1 {
				cut = i
				break
			}
			n++
		}
		text = strings.TrimRight(text[:cut], " \n\t") + "…"
	}
	return text + "\n" + line
}
