package crmclient

import (
	"fmt"
	"time"

	"leadrelay/lead"
)

// Lead is what Add sends: one enquiry from a web site, with the relay's
// lead fields (the table in package lead names each field's parameter per
// API version). Empty fields are not sent. There is deliberately no id: the
// CRM would update that lead instead of inserting one.
type Lead struct {
	lead.Lead
	// UIDs are external ids stored with the lead and returned by Info and
	// List (v2 only; v1 ignores them and they are not sent). The CRM neither
	// indexes nor de-duplicates them.
	UIDs map[string]string
}

// Status is a lead's processing state.
type Status int

// The lead states the CRM knows.
const (
	StatusOpen      Status = 0 // Открыт
	StatusInWork    Status = 1 // В работе
	StatusProcessed Status = 2 // Обработан
	StatusClosed    Status = 3 // Закрыт
)

// String returns the English name: "open", "in work", "processed", "closed".
func (s Status) String() string { return enumName("Status", statusNames, s) }

var statusNames = []string{
	StatusOpen: "open", StatusInWork: "in work", StatusProcessed: "processed", StatusClosed: "closed",
}

// Rezult is the outcome of processing a lead (the CRM's spelling). The zero
// value means no outcome yet.
type Rezult int

// The lead outcomes the CRM knows.
const (
	RezultNone      Rezult = 0 // not processed
	RezultSpam      Rezult = 1 // Спам
	RezultDuplicate Rezult = 2 // Дубль
	RezultOther     Rezult = 3 // Другое
	RezultNotTarget Rezult = 4 // Не целевой
)

// String returns the English name: "none", "spam", "duplicate", "other",
// "not target".
func (r Rezult) String() string { return enumName("Rezult", rezultNames, r) }

var rezultNames = []string{
	RezultNone: "none", RezultSpam: "spam", RezultDuplicate: "duplicate",
	RezultOther: "other", RezultNotTarget: "not target",
}

// enumName is v's name in names, or "typ(v)" for a value without one.
func enumName[T ~int](typ string, names []string, v T) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, int(v))
}

// Datum is a date as the CRM sends it: the CRM server's wall clock.
type Datum struct {
	// Raw is the value as sent, e.g. "2025-03-01 14:05:00",
	// "0000-00-00 00:00:00" or "".
	Raw string `json:"raw"`
	// Time is Raw parsed in the client's location (WithLocation); zero
	// when Raw is empty or not a date.
	Time time.Time `json:"time,omitzero"`
}

// String returns Raw.
func (d Datum) String() string { return d.Raw }

// parseDatum parses the layouts the CRM uses.
func parseDatum(raw string, loc *time.Location) Datum {
	d := Datum{Raw: raw}
	for _, layout := range []string{time.DateTime, time.DateOnly} {
		if t, err := time.ParseInLocation(layout, raw, loc); err == nil {
			d.Time = t
			break
		}
	}
	return d
}

// Contact is a CRM lead's text columns, named as the CRM names them: who
// enquired, how to reach them, what they wrote and from where. Info returns
// them all (in LeadInfo); the simulator (crmsim) stores and answers these
// same columns.
type Contact struct {
	Title       string `json:"title"`
	Email       string `json:"email"`
	Phone       string `json:"phone"`
	Site        string `json:"site"`
	Company     string `json:"company"`
	Description string `json:"description"`
	IP          string `json:"ip"`
	City        string `json:"city"`
	Country     string `json:"country"`
}

// UTM is a CRM lead's utm columns: the campaign that brought the enquiry.
type UTM struct {
	UTMSource   string `json:"utm_source"`
	UTMMedium   string `json:"utm_medium"`
	UTMCampaign string `json:"utm_campaign"`
	UTMTerm     string `json:"utm_term"`
	UTMContent  string `json:"utm_content"`
	UTMReferrer string `json:"utm_referrer"`
}

// LeadInfo is one lead as Info returns it. Fields the CRM leaves out are
// zero. Its JSON (ctl --json) names members in snake_case, as the CRM
// names them.
type LeadInfo struct {
	ID      int64  `json:"id"`
	Datum   Datum  `json:"datum"`    // created
	DatumDo Datum  `json:"datum_do"` // processed
	Status  Status `json:"status"`
	Rezult  Rezult `json:"rezult"`
	Contact
	IDUser     int64  `json:"iduser"`     // responsible user's id
	ClientPath int64  `json:"clientpath"` // source channel id
	PID        int64  `json:"pid"`        // contact id, 0 until processed
	CLID       int64  `json:"clid"`       // client id, 0 until processed
	DID        int64  `json:"did"`        // deal id, 0 until processed
	Partner    string `json:"partner"`
	UTM
	UIDs map[string]string `json:"uids,omitempty"` // v2; nil when none

	StatusName     string `json:"status_name"`
	RezultName     string `json:"rezult_name"`
	ClientPathName string `json:"clientpath_name"`
	UserName       string `json:"user_name"`
	Client         string `json:"client"`
	Person         string `json:"person"`
	Deal           string `json:"deal"`
}

// ListContact is the text columns a list row carries, named as the CRM
// names them: fewer than Contact (no title, no ip), and the description
// named content. crmsim prints the same ones.
type ListContact struct {
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Site    string `json:"site"`
	Company string `json:"company"`
	City    string `json:"city"`
	Country string `json:"country"`
	Content string `json:"content"` // the lead's text (description)
}

// ListItem is one lead as List returns it.
type ListItem struct {
	ID      int64 `json:"id"`
	Datum   Datum `json:"datum"`    // created
	DatumDo Datum `json:"datum_do"` // processed
	ListContact
	CLID           int64             `json:"clid"` // client id, 0 until processed
	Client         string            `json:"client"`
	PID            int64             `json:"pid"` // contact id, 0 until processed
	Person         string            `json:"person"`
	DID            int64             `json:"did"` // deal id, 0 until processed
	Deal           string            `json:"deal"`
	User           string            `json:"user"`      // v1: responsible user's full name; v2: always "0"
	UserName       string            `json:"user_name"` // v1: always "Не определен"
	Status         Status            `json:"status"`
	StatusName     string            `json:"status_name"`
	Rezult         Rezult            `json:"rezult"`
	RezultName     string            `json:"rezult_name"`
	ClientPath     int64             `json:"clientpath"` // source channel id
	ClientPathName string            `json:"clientpath_name"`
	UIDs           map[string]string `json:"uids,omitempty"` // v2; nil when none
}

// UserStat is one active user's lead counts from Stat, counted as the CRM
// counts them.
type UserStat struct {
	Login string `json:"login"` // v1 sends it as "title", v2 as "login"
	// InWork counts the leads in work (status 1, the CRM's "open") created
	// in the period. New leads (status 0) count nowhere in stat.
	InWork    int `json:"in_work"`
	Processed int `json:"processed"` // leads processed or closed in the period
}

// wire forms: every scalar may come as a JSON string, number or null.

type wireLeadInfo struct {
	ID      flexInt    `json:"id"`
	Datum   flexString `json:"datum"`
	DatumDo flexString `json:"datum_do"`
	Status  flexInt    `json:"status"`
	Rezult  flexInt    `json:"rezult"`
	wireText
	IDUser         flexInt    `json:"iduser"`
	ClientPath     flexInt    `json:"clientpath"`
	PID            flexInt    `json:"pid"`
	CLID           flexInt    `json:"clid"`
	DID            flexInt    `json:"did"`
	Partner        flexString `json:"partner"`
	UIDs           flexUIDs   `json:"uids"`
	StatusName     flexString `json:"statusName"`
	RezultName     flexString `json:"rezultName"`
	ClientPathName flexString `json:"clientpathName"`
	UserName       flexString `json:"userName"`
	Client         flexString `json:"client"`
	Person         flexString `json:"person"`
	Deal           flexString `json:"deal"`
}

func (w *wireLeadInfo) lead(loc *time.Location) LeadInfo {
	contact, utm := w.text()
	return LeadInfo{
		ID:             int64(w.ID),
		Datum:          parseDatum(string(w.Datum), loc),
		DatumDo:        parseDatum(string(w.DatumDo), loc),
		Status:         Status(w.Status),
		Rezult:         Rezult(w.Rezult),
		Contact:        contact,
		IDUser:         int64(w.IDUser),
		ClientPath:     int64(w.ClientPath),
		PID:            int64(w.PID),
		CLID:           int64(w.CLID),
		DID:            int64(w.DID),
		Partner:        string(w.Partner),
		UTM:            utm,
		UIDs:           map[string]string(w.UIDs),
		StatusName:     string(w.StatusName),
		RezultName:     string(w.RezultName),
		ClientPathName: string(w.ClientPathName),
		UserName:       string(w.UserName),
		Client:         string(w.Client),
		Person:         string(w.Person),
		Deal:           string(w.Deal),
	}
}

// wireText is the text columns of an info answer: Contact's and UTM's.
type wireText struct {
	Title       flexString `json:"title"`
	Email       flexString `json:"email"`
	Phone       flexString `json:"phone"`
	Site        flexString `json:"site"`
	Company     flexString `json:"company"`
	Description flexString `json:"description"`
	IP          flexString `json:"ip"`
	City        flexString `json:"city"`
	Country     flexString `json:"country"`
	UTMSource   flexString `json:"utm_source"`
	UTMMedium   flexString `json:"utm_medium"`
	UTMCampaign flexString `json:"utm_campaign"`
	UTMTerm     flexString `json:"utm_term"`
	UTMContent  flexString `json:"utm_content"`
	UTMReferrer flexString `json:"utm_referrer"`
}

func (w *wireText) text() (Contact, UTM) {
	c := Contact{
		Title: string(w.Title), Email: string(w.Email), Phone: string(w.Phone),
		Site: string(w.Site), Company: string(w.Company), Description: string(w.Description),
		IP: string(w.IP), City: string(w.City), Country: string(w.Country),
	}
	u := UTM{
		UTMSource: string(w.UTMSource), UTMMedium: string(w.UTMMedium), UTMCampaign: string(w.UTMCampaign),
		UTMTerm: string(w.UTMTerm), UTMContent: string(w.UTMContent), UTMReferrer: string(w.UTMReferrer),
	}
	return c, u
}

type wireListItem struct {
	ID             flexInt    `json:"id"`
	Datum          flexString `json:"datum"`
	DatumDo        flexString `json:"datum_do"`
	Email          flexString `json:"email"`
	Phone          flexString `json:"phone"`
	Site           flexString `json:"site"`
	Company        flexString `json:"company"`
	City           flexString `json:"city"`
	Country        flexString `json:"country"`
	Content        flexString `json:"content"`
	CLID           flexInt    `json:"clid"`
	Client         flexString `json:"client"`
	PID            flexInt    `json:"pid"`
	Person         flexString `json:"person"`
	DID            flexInt    `json:"did"`
	Deal           flexString `json:"deal"`
	User           flexString `json:"user"`
	UserName       flexString `json:"userName"`
	Status         flexInt    `json:"status"`
	StatusName     flexString `json:"statusName"`
	Rezult         flexInt    `json:"rezult"`
	RezultName     flexString `json:"rezultName"`
	ClientPath     flexInt    `json:"clientpath"`
	ClientPathName flexString `json:"clientpathName"`
	UIDs           flexUIDs   `json:"uids"`
}

func (w *wireListItem) item(loc *time.Location) ListItem {
	return ListItem{
		ID:      int64(w.ID),
		Datum:   parseDatum(string(w.Datum), loc),
		DatumDo: parseDatum(string(w.DatumDo), loc),
		ListContact: ListContact{
			Email: string(w.Email), Phone: string(w.Phone), Site: string(w.Site), Company: string(w.Company),
			City: string(w.City), Country: string(w.Country), Content: string(w.Content),
		},
		CLID:           int64(w.CLID),
		Client:         string(w.Client),
		PID:            int64(w.PID),
		Person:         string(w.Person),
		DID:            int64(w.DID),
		Deal:           string(w.Deal),
		User:           string(w.User),
		UserName:       string(w.UserName),
		Status:         Status(w.Status),
		StatusName:     string(w.StatusName),
		Rezult:         Rezult(w.Rezult),
		RezultName:     string(w.RezultName),
		ClientPath:     int64(w.ClientPath),
		ClientPathName: string(w.ClientPathName),
		UIDs:           map[string]string(w.UIDs),
	}
}

type wireUserStat struct {
	Title     flexString `json:"title"`
	Login     flexString `json:"login"`
	Open      flexInt    `json:"open"`
	Processed flexInt    `json:"processed"`
}
