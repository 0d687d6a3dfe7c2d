package crmclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// pagedCRM serves total leads, newest first, PageSize a page, like v2.
// With ignoreOffset it always serves page 0, like the running v1.
func pagedCRM(t *testing.T, total int, ignoreOffset bool) *stub {
	return newStub(t, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		form, _ := url.ParseQuery(string(body))
		page, _ := strconv.Atoi(form.Get("offset"))
		if ignoreOffset {
			page = 0
		}
		var rows []string
		for i := page * PageSize; i < min(total, (page+1)*PageSize); i++ {
			rows = append(rows, fmt.Sprintf(`{"id":"%d","datum":"2025-03-01 10:00:00","status":"0"}`, total-i))
		}
		if len(rows) == 0 {
			w.Write(golden(t, "v1_list_empty.json"))
			return
		}
		fmt.Fprintf(w, `{"data":[%s]}`, strings.Join(rows, ","))
	})
}

func TestWalk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		total     int
		start     int
		stopAfter int // fn returns false on this item; 0 = never
		wantItems int
		wantPages int
	}{
		{name: "three pages", total: 2*PageSize + 5, wantItems: 2*PageSize + 5, wantPages: 3},
		{name: "exact pages end with an empty page", total: 2 * PageSize, wantItems: 2 * PageSize, wantPages: 3},
		{name: "empty", total: 0, wantItems: 0, wantPages: 1},
		{name: "from page 1", total: 2*PageSize + 5, start: 1, wantItems: PageSize + 5, wantPages: 2},
		{name: "fn stops", total: 2*PageSize + 5, stopAfter: PageSize + 3, wantItems: PageSize + 3, wantPages: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := pagedCRM(t, tt.total, false)
			c := newTestClient(t, srv.URL, WithAPIVersion(V2))
			var ids []int64
			err := c.Walk(t.Context(), ListOptions{Page: tt.start, First: "new"}, func(it ListItem) bool {
				ids = append(ids, it.ID)
				return len(ids) != tt.stopAfter
			})
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, len(ids), tt.wantItems)
			reqs := srv.requests()
			wantEqual(t, len(reqs), tt.wantPages)
			for i, r := range reqs {
				form, _ := url.ParseQuery(string(r.body))
				wantEqual(t, form.Get("offset"), strconv.Itoa(tt.start+i))
				wantEqual(t, form.Get("first"), "new")
			}
			for i := 1; i < len(ids); i++ {
				if ids[i] >= ids[i-1] {
					t.Fatalf("ids not strictly newest first at %d: %d then %d", i, ids[i-1], ids[i])
				}
			}
		})
	}
}

func TestWalkOffsetIgnored(t *testing.T) {
	t.Parallel()
	srv := pagedCRM(t, 3*PageSize, true)
	c := newTestClient(t, srv.URL)
	n := 0
	err := c.Walk(t.Context(), ListOptions{}, func(ListItem) bool { n++; return true })
	if !errors.Is(err, ErrPagingIgnored) {
		t.Fatalf("got %v, want ErrPagingIgnored", err)
	}
	wantEqual(t, n, PageSize)
	wantEqual(t, len(srv.requests()), 2)
}

func TestWalkError(t *testing.T) {
	t.Parallel()
	srv := newStub(t, answerWith(200, nil, golden(t, "v1_err_401.json")))
	c := newTestClient(t, srv.URL)
	err := c.Walk(t.Context(), ListOptions{}, func(ListItem) bool { return true })
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 401 || ae.Action != actionList {
		t.Fatalf("got %v, want APIError 401 on list", err)
	}
	if err := c.Walk(t.Context(), ListOptions{}, nil); err == nil {
		t.Error("nil fn accepted")
	}
}
