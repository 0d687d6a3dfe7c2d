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
		return listReply(s, q, APIv1, s.v1ListItem)
	}
}

// listReply answers a list in either version: the rows as row prints
// them, a 404 when none match, a PHP fatal for an unknown column.
func listReply[T any](s *Sim, q listQuery, api string, row func(*StoredLead) T) reply {
	leads, err := s.listLeads(q)
	var col errUnknownColumn
	if errors.As(err, &col) {
		return phpFatal(sqlFatal(col))
	}
	if len(leads) == 0 {
		return apiError(api, 404, textNotFound)
	}
	s.mu.Lock()
	items := make([]T, len(leads))
	for i := range leads {
		items[i] = row(&leads[i])
	}
	s.mu.Unlock()
	return reply{json: map[string]any{"data": items}}
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

// v1ListItem builds a row, every value a string; callers hold s.mu.
func (s *Sim) v1ListItem(l *StoredLead) listRow[string] {
	r := listRowOf(s, l, itoa[int64])
	r.User, r.UserName = s.userName(l.IDUser), "Не определен"
	return r
}

// v1Info builds the info data: v2's columns, values as strings; callers
// hold s.mu.
func (s *Sim) v1Info(l *StoredLead) infoRow[string] { return infoRowOf(s, l, itoa[int64]) }
