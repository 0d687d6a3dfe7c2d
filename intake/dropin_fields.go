package intake

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"

	"leadrelay/lead"
)

// formContent is what a drop-in request says of its lead, once its names
// are mapped to lead fields with the site's settings.
type formContent struct {
	fields    map[string]string // lead fields by wire name
	extra     []extraField      // parameters that map to no field, by name
	hints     map[string]string // spam hint fields, by name
	ignored   []string          // names of machinery parameters, not forwarded
	droppedID bool
}

// extraField is a form's parameter that maps to no lead field; it becomes
// a labelled line of the description.
type extraField struct{ name, value string }

// Candidates for one lead field, ranked: the site's own mapping first,
// then the wire name, v2's name (clientpath), and the alias table in its
// order. The best non-empty one fills the field; the others are kept as
// extra lines.
const (
	rankSite = iota
	rankWire
	rankV2Name
	rankAlias
)

type candidate struct {
	name, value string
	rank        int
}

// machinery are parameters forms send that hold no visitor's data: the
// submit button, captcha tokens. Names starting with "_" (_token,
// _wpnonce, _charset_, Contact Form 7's _wpcf7…) are machinery too, as
// are uids[…] (the relay stamps its own).
var machinery = []string{"submit", "g-recaptcha-response", "h-captcha-response", "cf-turnstile-response", "smart-token"}

func isMachinery(name string) bool {
	return strings.HasPrefix(name, "_") || strings.HasPrefix(name, "uids[") || slices.Contains(machinery, strings.ToLower(name))
}

// mapFields sorts a drop-in request's decoded parameters into lead fields
// (the site's mapping, wire names, v2's names when v2, the alias table),
// spam hints, machinery, and the rest, which is kept as extra lines.
func mapFields(params map[string]string, siteFields map[string]string, v2 bool) formContent {
	fc := formContent{fields: map[string]string{}, hints: map[string]string{}}
	cands := map[string][]candidate{}
	for name, v := range params {
		field, rank, ok := formFieldOf(name, siteFields, v2)
		switch {
		case name == paramID:
			fc.droppedID = true
		case ok:
			if field == "user" {
				v = decodeAgain(v)[0] // the CRM decodes user twice too
			}
			cands[field] = append(cands[field], candidate{name: name, value: v, rank: rank})
		case slices.Contains(dropInHintFields, name):
			fc.hints[name] = v
		case isMachinery(name):
			fc.ignored = append(fc.ignored, shownName(name))
		case strings.TrimSpace(v) != "":
			fc.extra = append(fc.extra, extraField{name: name, value: v})
		}
	}
	for field, cs := range cands {
		slices.SortFunc(cs, func(a, b candidate) int {
			return cmp.Or(cmp.Compare(a.rank, b.rank), strings.Compare(a.name, b.name))
		})
		won := false
		for _, c := range cs {
			switch {
			case !won && c.value != "":
				fc.fields[field], won = c.value, true
			case !won:
				fc.fields[field] = "" // sent empty: the field is there
			case strings.TrimSpace(c.value) != "":
				fc.extra = append(fc.extra, extraField{name: c.name, value: c.value})
			}
		}
	}
	slices.SortFunc(fc.extra, func(a, b extraField) int { return strings.Compare(a.name, b.name) })
	slices.Sort(fc.ignored)
	return fc
}

// formFieldOf finds the lead field a parameter name stands for, and its rank.
func formFieldOf(name string, siteFields map[string]string, v2 bool) (string, int, bool) {
	if f, ok := siteFields[name]; ok {
		return f, rankSite, true
	}
	if _, ok := lead.LookupField(name); ok {
		return name, rankWire, true
	}
	if f := v2Names[name]; v2 && f != "" {
		return f, rankV2Name, true
	}
	if f, r, ok := lead.LookupAlias(name); ok {
		return f.Name, rankAlias + r, true
	}
	return "", 0, false
}

// extraLines renders extra fields as the description's lines, "name:
// value", each on one line.
func extraLines(extra []extraField) string {
	lines := make([]string, len(extra))
	for i, f := range extra {
		lines[i] = cleanHint(shownName(f.name)) + ": " + cleanHint(f.value)
	}
	return strings.Join(lines, "\n")
}

// maxLoggedNames bounds the unmapped names remembered per site for
// unmappedLog: a form that makes up names cannot grow the memory.
const maxLoggedNames = 64

// unmappedLog logs, at info, each parameter name a site's forms send that
// maps to no lead field: once per site and name, so the operator can add
// the name to the site's fields. It logs names only, never values.
type unmappedLog struct {
	log *zap.Logger
	mu  sync.Mutex
	// seen holds, per site, the names logged; a full set logs once more,
	// to say that the rest go unlogged.
	seen map[string]map[string]bool
}

func newUnmappedLog(log *zap.Logger) *unmappedLog {
	return &unmappedLog{log: log, seen: map[string]map[string]bool{}}
}

// saw logs the names of extra that were not logged for site before.
func (u *unmappedLog) saw(site string, extra []extraField) {
	if len(extra) == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	names := u.seen[site]
	if names == nil {
		names = map[string]bool{}
		u.seen[site] = names
	}
	for _, f := range extra {
		name := shownName(f.name)
		switch {
		case names[name]:
		case len(names) < maxLoggedNames:
			names[name] = true
			u.log.Info("drop-in field maps to no lead field; kept as a line of the description (map it in the site's fields)",
				zap.String("site", site), zap.String("field", name))
		case len(names) == maxLoggedNames:
			names[""] = true // once
			u.log.Info("drop-in: the site's forms send more field names that map to no lead field; no longer logged one by one",
				zap.String("site", site), zap.Int("logged", maxLoggedNames))
		}
	}
}
