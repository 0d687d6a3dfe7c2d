package crmclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// PageSize is the number of leads per list page; the CRM fixes it.
const PageSize = 200

// ListOptions selects leads for List and Walk. The zero value asks for the
// first page of the newest leads. The running v1 CRM ignores all of them;
// v2 honours Page, Order, First, and the dates only when both are set.
type ListOptions struct {
	// Page is the page number, from 0 (the CRM's offset).
	Page int
	// Order is the field to sort by; empty means datum. Only letters,
	// digits and _ are allowed (the CRM pastes it into SQL).
	Order string
	// First is "new" (newest first, the default when empty) or "old".
	First string
	// DateStart and DateEnd bound the creation date, inclusive, as
	// YYYY-MM-DD in each time's own location; zero means unset.
	DateStart, DateEnd time.Time
}

func (o ListOptions) params() (params, error) {
	var p params
	if o.Page < 0 {
		return p, fmt.Errorf("crmclient: list: negative page %d", o.Page)
	}
	switch o.First {
	case "", "new", "old":
	default:
		return p, fmt.Errorf("crmclient: list: First is %q, want \"new\" or \"old\"", o.First)
	}
	for _, r := range o.Order {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return p, fmt.Errorf("crmclient: list: Order %q is not a field name", o.Order)
		}
	}
	p.set("offset", strconv.Itoa(o.Page))
	p.setNonEmpty("order", o.Order)
	p.setNonEmpty("first", o.First)
	if !o.DateStart.IsZero() {
		p.set("dateStart", o.DateStart.Format(time.DateOnly))
	}
	if !o.DateEnd.IsZero() {
		p.set("dateEnd", o.DateEnd.Format(time.DateOnly))
	}
	return p, nil
}

// List returns one page of leads. An empty page (the CRM's 404 "Не
// найдено") is nil, nil.
func (c *Client) List(ctx context.Context, o ListOptions) ([]ListItem, error) {
	p, err := o.params()
	if err != nil {
		return nil, err
	}
	a, err := c.do(ctx, actionList, p)
	if err != nil {
		return nil, err
	}
	items, ae, err := decodeList(a.body, c.loc)
	switch {
	case ae != nil && ae.Code == 404:
		return nil, nil
	case ae != nil:
		return nil, c.apiError(actionList, ae)
	case err != nil:
		return nil, c.decodeError(actionList, a, err)
	}
	return items, nil
}

// Walk calls fn for every lead on the pages from o.Page on, until a page is
// short or empty, or fn returns false. If the CRM answers a page with
// exactly the leads of the page before (v1 ignores offset), Walk stops with
// ErrPagingIgnored rather than loop forever.
func (c *Client) Walk(ctx context.Context, o ListOptions, fn func(ListItem) bool) error {
	if fn == nil {
		return errors.New("crmclient: walk: nil fn")
	}
	var prev []int64
	for page := o.Page; ; page++ {
		o.Page = page
		items, err := c.List(ctx, o)
		if err != nil {
			return err
		}
		ids := make([]int64, len(items))
		for i, it := range items {
			ids[i] = it.ID
		}
		if len(ids) > 0 && slices.Equal(ids, prev) {
			return ErrPagingIgnored
		}
		prev = ids
		for _, it := range items {
			if !fn(it) {
				return nil
			}
		}
		if len(items) < PageSize {
			return nil
		}
	}
}
