package crmsim

import (
	"errors"
	"strconv"
	"time"
)

func itoa[T ~int | ~int64](n T) string { return strconv.FormatInt(int64(n), 10) }

// serveV1 answers a v1 request (developer/v1/leads), numbers as strings.
func (s *Sim) serveV1(rq *request, f Faults, d draws) reply {
	rep := s.serveV1Action(rq, f, d)
	// The CRM writes each request into its API log with unescaped SQL after
	// the action and before it answers: a ' anywhere fails the answer, not
	// the action.
	if rq.hasQuote && !rep.abort {
		return phpFatal(quoteFatal)
	}
	return rep
}

func (s *Sim) serveV1Action(rq *request, f Faults, d draws) reply {
	if _, errRep := s.authenticate(rq); errRep != nil {
		return *errRep
	}
	switch rq.action {
	case "add":
		if f.V1Shipped {
			s.countFault("v1_shipped")
			return phpFatal(v1ShippedFatal)
		}
		in := rq.input()
		in.clientPath = rq.get("path")
		in.userLogin = rq.user
		s.lateCommit(f, d)
		id, _ := s.add(in, f, rq)
		if id == 0 {
			text := textAddFailedV1 + textRejected
			return reply{json: v1AddError{Error: errDetail{Code: "1", Text: text}, ErrorText: text}}
		}
		if d.ambiguous {
			s.countFault("ambiguous")
			return reply{abort: true}
		}
		return reply{json: map[string]any{"result": v1AddResult{Text: "Success", ID: id}}}
	case "info":
		if f.V1Shipped {
			s.countFault("v1_shipped")
			return phpFatal(v1ShippedFatal)
		}
		raw := rq.get("id")
		s.mu.Lock()
		l, ok := s.st.get(phpInt(raw))
		var data any = infoStub()
		if ok {
			data = s.v1Info(l)
		}
		s.mu.Unlock()
		return reply{json: map[string]any{"result": map[string]any{"data": data, "id": raw}}}
	case "stat":
		s.mu.Lock()
		m := s.now().Format("2006-01")
		in := func(t time.Time) bool { return t.Format("2006-01") == m }
		rows := s.stat(in, in)
		s.mu.Unlock()
		out := make([]v1StatRow, len(rows))
		for i, r := range rows {
			out[i] = v1StatRow{Title: r.Login, Open: itoa(r.Open), Processed: itoa(r.Processed)}
		}
		return reply{json: map[string]any{"data": out}}
	default: // list
		q := rq.listQuery()
		q.ignoreAll = f.V1Shipped || f.V1ListIgnoresParams
		leads, err := s.listLeads(q)
		var col errUnknownColumn
		if errors.As(err, &col) {
			return phpFatal(sqlFatal(col))
		}
		if len(leads) == 0 {
			return apiError(APIv1, 404, textNotFound)
		}
		s.mu.Lock()
		items := make([]v1ListItem, len(leads))
		for i := range leads {
			items[i] = s.v1ListItem(&leads[i])
		}
		s.mu.Unlock()
		return reply{json: map[string]any{"data": items}}
	}
}

func sqlFatal(col errUnknownColumn) string {
	return "<br />\n<b>Fatal error</b>:  Uncaught mysqli_sql_exception: " + col.Error() +
		" in <b>/var/www/salesman/inc/class/SafeMysql.php</b> on line <b>512</b><br />\n"
}

type v1AddResult struct {
	Text string `json:"text"`
	ID   int64  `json:"id"`
}

type v1AddError struct {
	Error     errDetail `json:"error"`
	ErrorText string    `json:"Error"`
}

type v1StatRow struct {
	Title     string `json:"title"`
	Open      string `json:"open"`
	Processed string `json:"processed"`
}

// v1ListItem is a v1 list row: every value a string, user holds the
// responsible user's name and userName is always "Не определен".
type v1ListItem struct {
	ID             string  `json:"id"`
	Datum          string  `json:"datum"`
	DatumDo        *string `json:"datum_do"`
	Email          string  `json:"email"`
	Phone          string  `json:"phone"`
	Site           string  `json:"site"`
	Company        string  `json:"company"`
	City           string  `json:"city"`
	Country        string  `json:"country"`
	Content        string  `json:"content"`
	Clid           string  `json:"clid"`
	Client         *string `json:"client"`
	Pid            string  `json:"pid"`
	Person         *string `json:"person"`
	Did            string  `json:"did"`
	Deal           *string `json:"deal"`
	User           string  `json:"user"`
	UserName       string  `json:"userName"`
	Status         string  `json:"status"`
	StatusName     string  `json:"statusName"`
	Rezult         string  `json:"rezult"`
	RezultName     string  `json:"rezultName"`
	ClientPath     string  `json:"clientpath"`
	ClientPathName *string `json:"clientpathName"`
}

func datumDo(l *StoredLead) *string {
	if l.DatumDo.IsZero() {
		return nil
	}
	v := l.DatumDo.Format(datumLayout)
	return &v
}

// strtrName is PHP's strtr($value, $names): the name, or the value itself.
func strtrName(names map[int]string, v int) string {
	if n, ok := names[v]; ok {
		return n
	}
	return itoa(v)
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// v1ListItem builds a row; callers hold s.mu.
func (s *Sim) v1ListItem(l *StoredLead) v1ListItem {
	return v1ListItem{
		ID: itoa(l.ID), Datum: l.Datum.Format(datumLayout), DatumDo: datumDo(l),
		Email: l.Email, Phone: l.Phone, Site: l.Site, Company: l.Company, City: l.City, Country: l.Country,
		Content: l.Description, Clid: "0", Pid: "0", Did: "0",
		User: s.userName(l.IDUser), UserName: "Не определен",
		Status: itoa(l.Status), StatusName: strtrName(statusNames, l.Status),
		Rezult: itoa(l.Rezult), RezultName: strtrName(rezultNames, l.Rezult),
		ClientPath: itoa(l.ClientPathID), ClientPathName: nullIfEmpty(s.st.pathName(l.ClientPathID)),
	}
}

// v1Info is the lead as v1 info shows it: the v2 fields, values as strings.
type v1Info struct {
	ID             string  `json:"id"`
	Datum          string  `json:"datum"`
	DatumDo        *string `json:"datum_do"`
	Status         string  `json:"status"`
	Rezult         string  `json:"rezult"`
	Title          string  `json:"title"`
	Email          string  `json:"email"`
	Phone          string  `json:"phone"`
	Site           string  `json:"site"`
	Company        string  `json:"company"`
	Description    string  `json:"description"`
	IP             string  `json:"ip"`
	City           string  `json:"city"`
	Country        string  `json:"country"`
	IDUser         string  `json:"iduser"`
	ClientPath     string  `json:"clientpath"`
	Pid            string  `json:"pid"`
	Clid           string  `json:"clid"`
	Did            string  `json:"did"`
	Partner        string  `json:"partner"`
	UTMSource      string  `json:"utm_source"`
	UTMMedium      string  `json:"utm_medium"`
	UTMCampaign    string  `json:"utm_campaign"`
	UTMTerm        string  `json:"utm_term"`
	UTMContent     string  `json:"utm_content"`
	UTMReferrer    string  `json:"utm_referrer"`
	StatusName     string  `json:"statusName"`
	RezultName     *string `json:"rezultName"`
	ClientPathName string  `json:"clientpathName"`
	UserName       *string `json:"userName"`
	Client         *string `json:"client"`
	Person         *string `json:"person"`
	Deal           *string `json:"deal"`
}

func rezultName(r int) *string {
	if r <= 0 {
		return nil
	}
	n := strtrName(rezultNames, r)
	return &n
}

// v1Info builds the info data; callers hold s.mu.
func (s *Sim) v1Info(l *StoredLead) v1Info {
	return v1Info{
		ID: itoa(l.ID), Datum: l.Datum.Format(datumLayout), DatumDo: datumDo(l),
		Status: itoa(l.Status), Rezult: itoa(l.Rezult),
		Title: l.Title, Email: l.Email, Phone: l.Phone, Site: l.Site, Company: l.Company,
		Description: l.Description, IP: l.IP, City: l.City, Country: l.Country,
		IDUser: itoa(l.IDUser), ClientPath: itoa(l.ClientPathID), Pid: "0", Clid: "0", Did: "0", Partner: "0",
		UTMSource: l.UTMSource, UTMMedium: l.UTMMedium, UTMCampaign: l.UTMCampaign,
		UTMTerm: l.UTMTerm, UTMContent: l.UTMContent, UTMReferrer: l.UTMReferrer,
		StatusName: strtrName(statusNames, l.Status), RezultName: rezultName(l.Rezult),
		ClientPathName: s.st.pathName(l.ClientPathID), UserName: nullIfEmpty(s.userName(l.IDUser)),
	}
}

// infoStub is what info answers for an unknown id: the names the script
// adds to an empty row, and no id.
type infoStubData struct {
	Description    string  `json:"description"`
	StatusName     string  `json:"statusName"`
	RezultName     *string `json:"rezultName"`
	ClientPathName string  `json:"clientpathName"`
	UserName       *string `json:"userName"`
	Client         *string `json:"client"`
	Person         *string `json:"person"`
	Deal           *string `json:"deal"`
}

func infoStub() infoStubData { return infoStubData{} }
