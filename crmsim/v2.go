package crmsim

import (
	"sort"
	"strings"
	"time"
)

// serveV2 answers a v2 request (developer/v2/lead), numbers mostly as numbers.
func (s *Sim) serveV2(rq *request, f Faults, d draws) reply {
	if _, errRep := s.authenticate(rq); errRep != nil {
		return *errRep
	}
	switch rq.action {
	case "add":
		in := rq.input()
		in.clientPath = rq.get("clientpath") // v2 ignores path and user
		in.uids = rq.uids
		// The CRM inserts the row, calls its webhooks, and only then writes
		// the uids: with a gap, a kill or a PHP pool, they come later.
		in.deferUIDs = len(in.uids) > 0 && (f.StampGap > 0 || d.stampKill || f.PHPWorkers > 0)
		s.lateCommit(f, d)
		id, gen := s.add(in, f, rq)
		if id == 0 {
			// The real v2 reports a failed insert with code 401; the
			// simulator uses code 1 like v1 so a reject reads as one.
			return apiError(APIv2, 1, textAddFailedV2+textRejected)
		}
		if d.stampKill {
			s.countFault("stamp_kill")
			return reply{abort: true}
		}
		work(time.Duration(f.StampGap))
		s.webhookCall(f)
		if in.deferUIDs {
			s.stamp(id, gen)
		}
		if d.ambiguous {
			s.countFault("ambiguous")
			return reply{abort: true}
		}
		return reply{json: v2AddResult{Result: "Success", ID: id}}
	case "info":
		id := phpInt(rq.get("id"))
		s.mu.Lock()
		l, ok := s.st.get(id)
		var data any = infoStub()
		if ok {
			data = s.v2Info(l)
		}
		s.mu.Unlock()
		return reply{json: map[string]any{"data": data, "id": id}}
	case "stat":
		inOpen, inDone := s.v2StatWindow(rq.get("dateStart"), rq.get("dateEnd"))
		s.mu.Lock()
		rows := s.stat(inOpen, inDone)
		s.mu.Unlock()
		if rows == nil {
			rows = []UserStat{}
		}
		return reply{json: map[string]any{"data": rows}}
	default: // list
		q := rq.listQuery()
		q.v2Dates = true
		return listReply(s, q, APIv2, s.v2ListItem)
	}
}

// v2StatWindow mirrors v2 stat's date handling: both dates = inclusive
// range; only dateStart = that day (two-digit year format, so nothing in
// practice); only dateEnd = string comparison (broken likewise); neither =
// this month.
func (s *Sim) v2StatWindow(start, end string) (func(time.Time) bool, func(time.Time) bool) {
	start, end = strings.TrimSpace(start), strings.TrimSpace(end)
	var in func(time.Time) bool
	switch {
	case start != "" && end != "":
		lo, hi := start+" 00:00:00", end+" 23:59:59"
		in = func(t time.Time) bool { d := t.Format(datumLayout); return d >= lo && d <= hi }
	case start != "":
		in = func(t time.Time) bool { return t.Format("06-01-02") == start }
	case end != "":
		in = func(t time.Time) bool { return t.Format("06-01-02") < end }
	default:
		m := s.clock().In(s.loc).Format("2006-01")
		in = func(t time.Time) bool { return t.Format("2006-01") == m }
	}
	return in, in
}

type v2AddResult struct {
	Result string `json:"result"`
	ID     int64  `json:"id"`
}

// v2Info builds the info data; callers hold s.mu.
func (s *Sim) v2Info(l *StoredLead) infoRow[int64] {
	r := infoRowOf(s, l, asNumber)
	r.UIDs = uidList(l.UIDs)
	return r
}

// v2ListItem is a v2 list row. As shipped, user is always 0 and rezult and
// clientpath stay strings.
type v2ListItem struct {
	listRow[int64]
	UIDs []uidPair `json:"uids"`
}

// v2ListItem builds a row; callers hold s.mu.
func (s *Sim) v2ListItem(l *StoredLead) v2ListItem {
	return v2ListItem{listRow: listRowOf(s, l, asNumber), UIDs: uidList(l.UIDs)}
}

// asNumber spells a v2 number column: as the number it is.
func asNumber(n int64) int64 { return n }

// uidPair is one uid as the CRM's UIDs class lists it.
type uidPair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// uidList renders uids the way the running CRM answers them: a list of
// name/value pairs (sorted here, for stable answers), not an object.
func uidList(m map[string]string) []uidPair {
	out := make([]uidPair, 0, len(m))
	for k, v := range m {
		out = append(out, uidPair{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
