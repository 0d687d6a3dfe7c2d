package rdb

import (
	"testing"
	"time"
)

// TestDeadPutCompareAndSet: a dead lead's record is written only over the
// record (or the history) its writer read, so two deaths of one lead
// merge instead of one losing the other; the record moves between site
// and queue indexes, and a history taken up goes.
func TestDeadPutCompareAndSet(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := startStore(t)
	at := time.UnixMilli(1764583200000)
	if err := s.DeadKeepHistory(ctx, "ld_1", []byte(`{"attempts":3}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		row  DeadRow
		want bool
	}{
		{"history changed since read", DeadRow{ID: "ld_1", Site: "shop", Queue: "q", Record: []byte(`{"a":1}`), DeadAt: at,
			History: []byte(`{"attempts":2}`)}, false},
		{"first death takes the history up", DeadRow{ID: "ld_1", Site: "shop", Queue: "q", Record: []byte(`{"a":1}`), DeadAt: at,
			History: []byte(`{"attempts":3}`)}, true},
		{"a second writer read no record", DeadRow{ID: "ld_1", Site: "shop", Queue: "q", Record: []byte(`{"a":2}`), DeadAt: at}, false},
		{"it merged the record it read, now of another site", DeadRow{ID: "ld_1", Site: "blog", Queue: "q", Record: []byte(`{"a":2}`),
			DeadAt: at, Read: []byte(`{"a":1}`), ReadSite: "shop", ReadQueue: "q"}, true},
	}
	for _, st := range steps {
		if got, err := s.DeadPut(ctx, st.row); err != nil || got != st.want {
			t.Fatalf("%s: DeadPut = %v, %v; want %v", st.name, got, err, st.want)
		}
	}
	if rec, _ := s.DeadRecord(ctx, "ld_1"); string(rec) != `{"a":2}` {
		t.Errorf("record = %s", rec)
	}
	if h, _ := s.DeadHistory(ctx, "ld_1"); h != nil {
		t.Errorf("history kept after the record took it up: %s", h)
	}
	for site, want := range map[string]int{"shop": 0, "blog": 1} {
		if ids, n, err := s.DeadIDs(ctx, DeadRange{Site: site}); err != nil || n != want || len(ids) != want {
			t.Errorf("site %s: %v, %d, %v; want %d", site, ids, n, err, want)
		}
	}
	if n, err := s.DeadDelete(ctx, "ld_1", "ld_none"); err != nil || n != 1 {
		t.Errorf("DeadDelete = %d, %v", n, err)
	}
	if n, _ := s.DeadCount(ctx, ""); n != 0 {
		t.Errorf("after the delete %d dead leads", n)
	}
}
