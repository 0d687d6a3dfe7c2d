package crmsim

// Both API versions print a lead from the same row of the CRM's table, and
// many of its columns print alike in v1 and v2. Those columns are the
// structs below: each version's row embeds them where it prints them (JSON
// keeps embedded fields in place), so each column is mapped from a
// StoredLead once, and the versions differ only where the CRM does.

// listHead is how a list row begins in both versions.
type listHead struct {
	Datum   string  `json:"datum"`
	DatumDo *string `json:"datum_do"`
	Email   string  `json:"email"`
	Phone   string  `json:"phone"`
	Site    string  `json:"site"`
	Company string  `json:"company"`
	City    string  `json:"city"`
	Country string  `json:"country"`
	Content string  `json:"content"`
}

func listHeadOf(l *StoredLead) listHead {
	return listHead{
		Datum: l.Datum.Format(datumLayout), DatumDo: datumDo(l),
		Email: l.Email, Phone: l.Phone, Site: l.Site, Company: l.Company, City: l.City, Country: l.Country,
		Content: l.Description,
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

// infoContact is the contact block of an info answer.
type infoContact struct {
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

func infoContactOf(l *StoredLead) infoContact {
	return infoContact{
		Title: l.Title, Email: l.Email, Phone: l.Phone, Site: l.Site, Company: l.Company,
		Description: l.Description, IP: l.IP, City: l.City, Country: l.Country,
	}
}

// infoUTM is the utm block of an info answer.
type infoUTM struct {
	UTMSource   string `json:"utm_source"`
	UTMMedium   string `json:"utm_medium"`
	UTMCampaign string `json:"utm_campaign"`
	UTMTerm     string `json:"utm_term"`
	UTMContent  string `json:"utm_content"`
	UTMReferrer string `json:"utm_referrer"`
}

func infoUTMOf(l *StoredLead) infoUTM {
	return infoUTM{
		UTMSource: l.UTMSource, UTMMedium: l.UTMMedium, UTMCampaign: l.UTMCampaign,
		UTMTerm: l.UTMTerm, UTMContent: l.UTMContent, UTMReferrer: l.UTMReferrer,
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
