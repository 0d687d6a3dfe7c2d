package crmsim

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"leadrelay/crmclient"
)

// Lead statuses, as the CRM numbers them.
const (
	StatusOpen      = 0 // Открыт
	StatusInWork    = 1 // В работе
	StatusProcessed = 2 // Обработан
	StatusClosed    = 3 // Закрыт
)

var statusNames = map[int]string{0: "Открыт", 1: "В работе", 2: "Обработан", 3: "Закрыт"}
var rezultNames = map[int]string{1: "Спам", 2: "Дубль", 3: "Другое", 4: "Не целевой"}

// datumLayout is how the CRM prints datum and datum_do.
const datumLayout = "2006-01-02 15:04:05"

// StoredLead is a lead as the simulator stores it: every field of add, plus
// what the CRM adds. Its text and utm columns are the client's Contact and
// UTM, so what the simulator stores and what the client reads are named in
// one place. Fields beyond the CRM's (API, Login, UserLogin, Updates) help
// tests count and trace leads.
type StoredLead struct {
	ID      int64     `json:"id"`
	API     string    `json:"api"`   // version whose add created it: "v1" or "v2"
	Login   string    `json:"login"` // login that called add
	Datum   time.Time `json:"datum"` // created, CRM local time
	DatumDo time.Time `json:"datum_do,omitzero"`
	Status  int       `json:"status"`
	Rezult  int       `json:"rezult"`
	crmclient.Contact
	Partner      string `json:"partner"`       // partner site as sent (the CRM keeps only a partner id: 0 here)
	ClientPath   string `json:"clientpath"`    // name of the source the lead is filed under (see clientPath)
	ClientPathID int    `json:"clientpath_id"` // source id, 0 = none
	crmclient.UTM
	IDUser    int               `json:"iduser"`     // responsible user
	UserLogin string            `json:"user_login"` // responsible user's login
	UIDs      map[string]string `json:"uids,omitempty"`
	// MissingUIDs are uids the add carried that are not written yet: during
	// the StampGap, or forever when StampKillRate killed the add.
	MissingUIDs map[string]string `json:"missing_uids,omitempty"`
	Updates     int               `json:"updates,omitempty"` // times rewritten by an add carrying this id
}

func (l StoredLead) clone() StoredLead {
	l.UIDs, l.MissingUIDs = maps.Clone(l.UIDs), maps.Clone(l.MissingUIDs)
	return l
}

// store holds the leads; callers hold Sim.mu. Lead id n is leads[n-1]:
// ids are sequential and leads are never deleted (Reset drops them all).
type store struct {
	leads   []StoredLead
	byEmail map[string]int // normalised e-mail -> iduser of its first lead
	byPhone map[string]int // phone digits -> iduser of its first lead
	paths   []source       // client sources ("client paths"); id = index+1
	// datumSorted is true while leads in id order are also in datum order
	// (the usual case), so list by datum or id needs no sort.
	datumSorted bool
	// gen counts resets, so a late stamp never lands on a new lead of the same id.
	gen uint64
}

func (st *store) init() {
	st.gen++
	st.leads = nil
	st.byEmail = map[string]int{}
	st.byPhone = map[string]int{}
	st.paths = nil
	st.datumSorted = true
}

// push appends l (whose ID is already set) and indexes it.
func (st *store) push(l StoredLead) {
	if n := len(st.leads); n > 0 && l.Datum.Before(st.leads[n-1].Datum) {
		st.datumSorted = false
	}
	st.leads = append(st.leads, l)
	st.index(&st.leads[len(st.leads)-1])
}

func (st *store) get(id int64) (*StoredLead, bool) {
	if id < 1 || id > int64(len(st.leads)) {
		return nil, false
	}
	return &st.leads[id-1], true
}

func (st *store) index(l *StoredLead) {
	if k := emailKey(l.Email); k != "" {
		if _, ok := st.byEmail[k]; !ok {
			st.byEmail[k] = l.IDUser
		}
	}
	if k := phoneKey(l.Phone); k != "" {
		if _, ok := st.byPhone[k]; !ok {
			st.byPhone[k] = l.IDUser
		}
	}
}

// owner returns the responsible user of an earlier lead with this e-mail or
// phone, 0 if none: the CRM's look-up of existing clients and contacts.
func (st *store) owner(email, phone string) int {
	if k := emailKey(email); k != "" {
		if id, ok := st.byEmail[k]; ok {
			return id
		}
	}
	if k := phoneKey(phone); k != "" {
		if id, ok := st.byPhone[k]; ok {
			return id
		}
	}
	return 0
}

func emailKey(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func phoneKey(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() < 5 { // too short to identify anybody
		return ""
	}
	return b.String()
}

// source is one of the CRM's client sources (table clientpath).
type source struct {
	name string
	utm  string // the utm_source that files a lead under it; "" = none
}

// clientPath finds the source of an add like the CRM's getClientpath: by
// the lead's utm_source when it has one, else by name (both case-blind,
// as MariaDB compares them); when none is found and a name is given, a
// new source with that name and utm_source is made, even when one of
// that name exists. A name is a name, never an id ("3" makes a source
// called 3). 0 is no source.
func (st *store) clientPath(name, utm string) int {
	name, utm = strings.TrimSpace(name), strings.TrimSpace(utm)
	match := func(f func(source) string, v string) int {
		for i, src := range st.paths {
			if strings.EqualFold(f(src), v) {
				return i + 1
			}
		}
		return 0
	}
	id := 0
	switch {
	case utm != "":
		id = match(func(s source) string { return s.utm }, utm)
	case name != "":
		id = match(func(s source) string { return s.name }, name)
	}
	if id == 0 && name != "" {
		id = st.addSource(name, utm)
	}
	return id
}

// addSource appends a source and returns its id.
func (st *store) addSource(name, utm string) int {
	st.paths = append(st.paths, source{name: name, utm: utm})
	return len(st.paths)
}

func (st *store) pathName(id int) string {
	if id < 1 || id > len(st.paths) {
		return ""
	}
	return st.paths[id-1].name
}

// pathUTM is the utm_source of source id, "" for none.
func (st *store) pathUTM(id int) string {
	if id < 1 || id > len(st.paths) {
		return ""
	}
	return st.paths[id-1].utm
}

// tagRE matches what PHP's strip_tags removes, near enough.
var tagRE = regexp.MustCompile(`<[^>]*>?`)

// untag strips tags, then the characters crmclient.DropUntagChars drops,
// like the CRM's untag().
func untag(s string) string {
	if strings.ContainsAny(s, "<") {
		s = tagRE.ReplaceAllString(s, "")
	}
	return strings.TrimSpace(crmclient.DropUntagChars(s))
}

// StripText applies the CRM's text stripping to s. Anything comparing what
// the CRM lists with what was sent should apply it to both sides.
func StripText(s string) string { return untag(s) }

// listQuery is a parsed list request.
type listQuery struct {
	offset     int
	order      string
	old        bool
	dateStart  string
	dateEnd    string
	v2Dates    bool // apply v2's shipped (broken) single-date filters
	ignoreAll  bool // shipped v1: newest 200, every parameter ignored
	statusList string
}

const pageSize = 200

// orderable are the columns list can sort by; anything else is an SQL error.
var orderable = map[string]func(a, b *StoredLead) int{
	"id":          func(a, b *StoredLead) int { return cmp.Compare(a.ID, b.ID) },
	"datum":       func(a, b *StoredLead) int { return a.Datum.Compare(b.Datum) },
	"datum_do":    func(a, b *StoredLead) int { return a.DatumDo.Compare(b.DatumDo) },
	"status":      func(a, b *StoredLead) int { return cmp.Compare(a.Status, b.Status) },
	"rezult":      func(a, b *StoredLead) int { return cmp.Compare(a.Rezult, b.Rezult) },
	"iduser":      func(a, b *StoredLead) int { return cmp.Compare(a.IDUser, b.IDUser) },
	"clientpath":  func(a, b *StoredLead) int { return cmp.Compare(a.ClientPathID, b.ClientPathID) },
	"title":       func(a, b *StoredLead) int { return strings.Compare(a.Title, b.Title) },
	"email":       func(a, b *StoredLead) int { return strings.Compare(a.Email, b.Email) },
	"phone":       func(a, b *StoredLead) int { return strings.Compare(a.Phone, b.Phone) },
	"company":     func(a, b *StoredLead) int { return strings.Compare(a.Company, b.Company) },
	"city":        func(a, b *StoredLead) int { return strings.Compare(a.City, b.City) },
	"country":     func(a, b *StoredLead) int { return strings.Compare(a.Country, b.Country) },
	"content":     func(a, b *StoredLead) int { return strings.Compare(a.Description, b.Description) },
	"description": func(a, b *StoredLead) int { return strings.Compare(a.Description, b.Description) },
}

// errUnknownColumn is the SQL error of an order by a column that does not exist.
type errUnknownColumn string

func (e errUnknownColumn) Error() string {
	return fmt.Sprintf("Unknown column '%s' in 'order clause'", string(e))
}

// list returns copies of one page of leads, or an errUnknownColumn.
func (st *store) list(q listQuery) ([]StoredLead, error) {
	if q.ignoreAll {
		q = listQuery{}
	}
	order := q.order
	if order == "" {
		order = "datum"
	}
	less, ok := orderable[strings.ToLower(order)]
	if !ok {
		return nil, errUnknownColumn(order)
	}
	match := st.dateFilter(q)
	if key := strings.ToLower(order); key == "id" || key == "datum" && st.datumSorted {
		return st.listInOrder(q, key == "datum", match), nil
	}
	sel := make([]*StoredLead, 0, min(len(st.leads), 1024))
	for i := range st.leads {
		if match(&st.leads[i]) {
			sel = append(sel, &st.leads[i])
		}
	}
	// As MariaDB sorts: only the column is reversed for newest first; rows
	// equal in it stay in the table's order, ascending ids.
	slices.SortStableFunc(sel, func(a, b *StoredLead) int {
		c := less(a, b)
		if !q.old {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(a.ID, b.ID)
		}
		return c
	})
	from := q.offset * pageSize
	if q.offset < 0 || from >= len(sel) {
		return nil, nil
	}
	sel = sel[from:min(from+pageSize, len(sel))]
	out := make([]StoredLead, len(sel))
	for i, l := range sel {
		out[i] = l.clone()
	}
	return out, nil
}

// listInOrder pages through leads already in the wanted order, without
// sorting: the fast path for the default order. byDatum lists newest
// first as the CRM does, by whole seconds (datum's precision), each
// second's leads in ascending ids.
func (st *store) listInOrder(q listQuery, byDatum bool, match func(*StoredLead) bool) []StoredLead {
	if q.offset < 0 {
		return nil
	}
	skip := q.offset * pageSize
	var out []StoredLead
	for i := range st.inOrder(q.old, byDatum) {
		l := &st.leads[i]
		if !match(l) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		out = append(out, l.clone())
		if len(out) == pageSize {
			break
		}
	}
	return out
}

// inOrder yields the indices of the leads in id order (old), newest first
// by id, or newest first by datum: MariaDB reverses the column only, so
// the leads of one second keep the table's ascending ids.
func (st *store) inOrder(old, byDatum bool) iter.Seq[int] {
	n := len(st.leads)
	return func(yield func(int) bool) {
		switch {
		case old:
			for i := range n {
				if !yield(i) {
					return
				}
			}
		case !byDatum:
			for i := n - 1; i >= 0; i-- {
				if !yield(i) {
					return
				}
			}
		default:
			for hi := n; hi > 0; {
				lo := hi - 1
				for lo > 0 && st.leads[lo-1].Datum.Equal(st.leads[hi-1].Datum) {
					lo--
				}
				for i := lo; i < hi; i++ {
					if !yield(i) {
						return
					}
				}
				hi = lo
			}
		}
	}
}

// dateFilter builds the creation-date filter. Both dates: inclusive range.
// v1 (vendor page): only dateStart = created on or after that day, only
// dateEnd = created before that day. v2 as shipped compares a two-digit-year
// date string: dateStart alone matches nothing, dateEnd alone is a string
// comparison that is wrong for current years.
func (st *store) dateFilter(q listQuery) func(*StoredLead) bool {
	start, errS := time.Parse(time.DateOnly, q.dateStart)
	end, errE := time.Parse(time.DateOnly, q.dateEnd)
	switch {
	case q.dateStart != "" && q.dateEnd != "":
		ds, de := q.dateStart+" 00:00:00", q.dateEnd+" 23:59:59"
		return func(l *StoredLead) bool { // MySQL BETWEEN on the datum text
			d := l.Datum.Format(datumLayout)
			return d >= ds && d <= de
		}
	case q.dateStart != "" && q.v2Dates:
		return func(l *StoredLead) bool { return l.Datum.Format("06-01-02") == q.dateStart }
	case q.dateEnd != "" && q.v2Dates:
		return func(l *StoredLead) bool { return l.Datum.Format("06-01-02") < q.dateEnd }
	case q.dateStart != "":
		if errS != nil {
			return func(*StoredLead) bool { return false }
		}
		return func(l *StoredLead) bool { return !dayOf(l.Datum).Before(start) }
	case q.dateEnd != "":
		if errE != nil {
			return func(*StoredLead) bool { return false }
		}
		return func(l *StoredLead) bool { return dayOf(l.Datum).Before(end) }
	}
	return func(*StoredLead) bool { return true }
}

// dayOf is t's calendar day (in t's own zone) as a UTC midnight, comparable
// with time.Parse(time.DateOnly, ...).
func dayOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// UserStat is one row of stat.
type UserStat struct {
	Login     string `json:"login"`
	Open      int    `json:"open"`
	Processed int    `json:"processed"`
}

// stat counts, per active user, leads in work (status 1) created in the
// window and leads processed or closed (status 2, 3) with datum_do in it.
func (s *Sim) stat(inOpen, inDone func(time.Time) bool) []UserStat {
	open := make([]int, len(s.users)+1)
	done := make([]int, len(s.users)+1)
	for i := range s.st.leads {
		l := &s.st.leads[i]
		if l.IDUser < 1 || l.IDUser > len(s.users) {
			continue
		}
		switch l.Status {
		case StatusInWork:
			if inOpen(l.Datum) {
				open[l.IDUser]++
			}
		case StatusProcessed, StatusClosed:
			if !l.DatumDo.IsZero() && inDone(l.DatumDo) {
				done[l.IDUser]++
			}
		}
	}
	var out []UserStat
	for i, u := range s.users {
		if u.Active {
			out = append(out, UserStat{Login: u.Login, Open: open[i+1], Processed: done[i+1]})
		}
	}
	return out
}

// Stat returns what the stat action would count for the current month.
func (s *Sim) Stat() []UserStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.now().Format("2006-01")
	in := func(t time.Time) bool { return t.Format("2006-01") == m }
	return s.stat(in, in)
}

// leadInput is an add request after parsing.
type leadInput struct {
	api                                               string
	login                                             string
	id                                                int64 // > 0: update that lead (the CRM's behaviour)
	title, email, phone, site, company, description   string
	ip, country, city, partner, clientPath, userLogin string
	utmSource, utmMedium, utmCampaign, utmTerm        string
	utmContent, utmReferrer                           string
	uids                                              map[string]string
	deferUIDs                                         bool // store uids as MissingUIDs, for stamp to write later
}

// addLead stores in as a new lead, or, when in.id > 0, rewrites that lead
// like the CRM's UPDATE (an unknown id changes nothing). Either way the
// answer is the id. Callers hold s.mu.
func (s *Sim) addLead(in leadInput) int64 {
	l := StoredLead{
		API: in.api, Login: in.login,
		Contact: crmclient.Contact{
			Title: untag(in.title), Email: untag(in.email), Phone: untag(in.phone),
			Site: untag(in.site), Company: untag(in.company), Description: untag(in.description),
			IP: untag(in.ip), City: untag(in.city), Country: untag(in.country),
		},
		Partner: untag(in.partner),
		UTM: crmclient.UTM{
			UTMSource: untag(in.utmSource), UTMMedium: untag(in.utmMedium), UTMCampaign: untag(in.utmCampaign),
			UTMTerm: untag(in.utmTerm), UTMContent: untag(in.utmContent), UTMReferrer: untag(in.utmReferrer),
		},
	}
	// Both versions file the lead under a source as getClientpath does;
	// v2 then stores the source's utm_source, not the request's.
	l.ClientPathID = s.st.clientPath(in.clientPath, in.utmSource)
	l.ClientPath = s.st.pathName(l.ClientPathID)
	if in.api == APIv2 {
		l.UTMSource = s.st.pathUTM(l.ClientPathID)
	}
	if len(in.uids) > 0 {
		uids := make(map[string]string, len(in.uids))
		for k, v := range in.uids {
			uids[untag(k)] = untag(v)
		}
		if in.deferUIDs {
			l.MissingUIDs = uids
		} else {
			l.UIDs = uids
		}
	}
	l.IDUser = s.st.owner(l.Email, l.Phone)
	if l.IDUser == 0 && in.userLogin != "" {
		l.IDUser = s.userByLogin(in.userLogin)
	}
	if l.IDUser == 0 {
		l.IDUser = s.coord
	}
	l.UserLogin = s.users[l.IDUser-1].Login
	if l.IDUser != s.coord { // as the CRM: a lead routed to an operator is in work
		l.Status = StatusInWork
	}
	l.Datum = s.now().Truncate(time.Second) // a DATETIME column: whole seconds
	if in.id > 0 {
		old, ok := s.st.get(in.id)
		if !ok {
			return in.id
		}
		l.ID, l.Datum, l.DatumDo, l.Rezult = old.ID, old.Datum, old.DatumDo, old.Rezult
		l.Updates = old.Updates + 1
		if l.UIDs == nil {
			l.UIDs = old.UIDs
		}
		*old = l
		s.st.index(old)
		s.changed()
		return in.id
	}
	l.ID = int64(len(s.st.leads)) + 1
	s.st.push(l)
	s.changed()
	return l.ID
}

// Leads returns a copy of every stored lead, in id order.
func (s *Sim) Leads() []StoredLead {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StoredLead, len(s.st.leads))
	for i := range s.st.leads {
		out[i] = s.st.leads[i].clone()
	}
	return out
}

// Lead returns a copy of lead id.
func (s *Sim) Lead(id int64) (StoredLead, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.st.get(id)
	if !ok {
		return StoredLead{}, false
	}
	return l.clone(), true
}

// ErrNoLead is returned by SetStatus for an id that was never stored.
var ErrNoLead = errors.New("crmsim: no such lead")

// SetStatus sets a lead's status (0-3) and rezult (0-4), as an operator
// working it in the CRM would. Status 2 or 3 stamps datum_do with the
// current time (what stat counts as processed); 0 or 1 clears it.
func (s *Sim) SetStatus(id int64, status, rezult int) error {
	if status < StatusOpen || status > StatusClosed {
		return fmt.Errorf("crmsim: status must be 0..3, got %d", status)
	}
	if rezult < 0 || rezult > 4 {
		return fmt.Errorf("crmsim: rezult must be 0..4, got %d", rezult)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.st.get(id)
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoLead, id)
	}
	l.Status, l.Rezult = status, rezult
	if status >= StatusProcessed {
		l.DatumDo = s.now()
	} else {
		l.DatumDo = time.Time{}
	}
	s.changed()
	return nil
}

// Reset drops every lead and source, restarts ids at 1 and zeroes Stats.
// Faults are kept.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.init()
	s.stats.init()
	s.changed()
}
