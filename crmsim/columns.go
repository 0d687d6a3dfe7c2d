package crmsim

import "leadrelay/crmclient"

// Both API versions print a lead from the same row of the CRM's table, and
// many of its columns print alike in v1 and v2. Those columns are the
// structs below, and crmclient's Contact and UTM, which StoredLead keeps as
// they are: each version's row embeds them where it prints them (JSON
// keeps embedded fields in place), so each column is mapped from a
// StoredLead once, and the versions differ only where the CRM does.

// number is how a version prints a number column: v1 as a JSON string, v2
// as a JSON number.
type number interface{ string | int64 }

// listRow is a list row in either version, N its numbers' spelling. v1's
// user holds the responsible user's name and its userName is always "Не
// определен"; v2's user is always 0, and v2 adds uids after the row.
type listRow[N number] struct {
	ID N `json:"id"`
	listHead
	Clid     N       `json:"clid"`
	Client   *string `json:"client"`
	Pid      N       `json:"pid"`
	Person   *string `json:"person"`
	Did      N       `json:"did"`
	Deal     *string `json:"deal"`
	User     N       `json:"user"`
	UserName string  `json:"userName"`
	Status   N       `json:"status"`
	listTail
}

// listRowOf builds a row but its user columns, numbers spelled by num;
// callers hold s.mu.
func listRowOf[N number](s *Sim, l *StoredLead, num func(int64) N) listRow[N] {
	return listRow[N]{
		ID: num(l.ID), listHead: listHeadOf(l), Clid: num(0), Pid: num(0), Did: num(0),
		Status: num(int64(l.Status)), listTail: s.listTailOf(l),
	}
}

// infoRow is a lead as info shows it in either version, N its numbers'
// spelling.
type infoRow[N number] struct {
	ID      N       `json:"id"`
	Datum   string  `json:"datum"`
	DatumDo *string `json:"datum_do"`
	Status  N       `json:"status"`
	Rezult  N       `json:"rezult"`
	crmclient.Contact
	IDUser     N `json:"iduser"`
	ClientPath N `json:"clientpath"`
	Pid        N `json:"pid"`
	Clid       N `json:"clid"`
	Did        N `json:"did"`
	Partner    N `json:"partner"`
	crmclient.UTM
	UIDs []uidPair `json:"uids,omitempty"` // v2 only: v1 shows none
	infoNames
}

// infoRowOf builds the info data but its uids, numbers spelled by num;
// callers hold s.mu.
func infoRowOf[N number](s *Sim, l *StoredLead, num func(int64) N) infoRow[N] {
	return infoRow[N]{
		ID: num(l.ID), Datum: l.Datum.Format(datumLayout), DatumDo: datumDo(l),
		Status: num(int64(l.Status)), Rezult: num(int64(l.Rezult)), Contact: l.Contact,
		IDUser: num(int64(l.IDUser)), ClientPath: num(int64(l.ClientPathID)),
		Pid: num(0), Clid: num(0), Did: num(0), Partner: num(0),
		UTM: l.UTM, infoNames: s.infoNamesOf(l),
	}
}

// listHead is how a list row begins in both versions.
type listHead struct {
	Datum   string  `json:"datum"`
	DatumDo *string `json:"datum_do"`
	crmclient.ListContact
}

func listHeadOf(l *StoredLead) listHead {
	return listHead{
		Datum: l.Datum.Format(datumLayout), DatumDo: datumDo(l),
		ListContact: crmclient.ListContact{
			Email: l.Email, Phone: l.Phone, Site: l.Site, Company: l.Company, City: l.City, Country: l.Country,
			Content: l.Description,
		},
	}
}

// listTail is how a list row ends in both versions (v2 adds uids after it):
// rezult and clientpath stay strings in v2 too.
type listTail struct {
	StatusName     string  `json:"statusName"`
	Rezult         string  `json:"rezult"`
	RezultName     string  `json:"rezultName"`
	ClientPath     string  `json:"clientpath"`
	ClientPathName *string `json:"clientpathName"`
}

// listTailOf builds the columns; callers hold s.mu.
func (s *Sim) listTailOf(l *StoredLead) listTail {
	return listTail{
		StatusName: strtrName(statusNames, l.Status),
		Rezult:     itoa(l.Rezult), RezultName: strtrName(rezultNames, l.Rezult),
		ClientPath: itoa(l.ClientPathID), ClientPathName: nullIfEmpty(s.st.pathName(l.ClientPathID)),
	}
}

// infoNames are the names the info script adds to a row, last; an unknown
// id gets them too, empty (infoStub).
type infoNames struct {
	StatusName     string  `json:"statusName"`
	RezultName     *string `json:"rezultName"`
	ClientPathName string  `json:"clientpathName"`
	UserName       *string `json:"userName"`
	Client         *string `json:"client"`
	Person         *string `json:"person"`
	Deal           *string `json:"deal"`
}

// infoNamesOf builds the names; callers hold s.mu.
func (s *Sim) infoNamesOf(l *StoredLead) infoNames {
	return infoNames{
		StatusName: strtrName(statusNames, l.Status), RezultName: rezultName(l.Rezult),
		ClientPathName: s.st.pathName(l.ClientPathID), UserName: nullIfEmpty(s.userName(l.IDUser)),
	}
}

func rezultName(r int) *string {
	if r <= 0 {
		return nil
	}
	n := strtrName(rezultNames, r)
	return &n
}

// infoStubData is what info answers for an unknown id: the names the
// script adds to an empty row, and no id.
type infoStubData struct {
	Description string `json:"description"`
	infoNames
}

func infoStub() infoStubData { return infoStubData{} }
