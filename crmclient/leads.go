package crmclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"leadrelay/lead"
)

// Add creates a lead and returns its id. Add is not idempotent: the CRM does
// not de-duplicate, so after an error of ClassAmbiguous the lead may exist.
// On v1 the character ' is removed from the lead's text (the CRM strips it
// anyway, and v1 fails on it while logging the request); v1 ignores UIDs.
// The lead goes out as Sent(l): on v2 its ip as the description's last line,
// emoji replaced (WithSanitize).
func (c *Client) Add(ctx context.Context, l Lead) (int64, error) {
	l = c.Sent(l)
	var p params
	text := func(s string) string {
		if c.version == V1 {
			return strings.ReplaceAll(s, "'", "")
		}
		return s
	}
	for _, f := range lead.Fields() {
		if name := c.param(f); name != "" {
			p.setNonEmpty(name, text(*f.Of(&l.Lead)))
		}
	}
	if c.version == V2 && len(l.UIDs) > 0 {
		p.uids = make(map[string]string, len(l.UIDs))
		for k, v := range l.UIDs {
			if k == "" {
				return 0, errors.New("crmclient: add: empty uid name")
			}
			p.uids[k] = v
		}
	}

	a, err := c.do(ctx, actionAdd, p)
	if err != nil {
		return 0, err
	}
	id, ae, err := decodeAdd(a.body)
	switch {
	case ae != nil:
		return 0, c.apiError(actionAdd, ae)
	case err != nil:
		return 0, c.decodeError(actionAdd, a, err)
	}
	return id, nil
}

// param is the name of f's parameter in this client's API version, "" when
// the version has none.
func (c *Client) param(f lead.Field) string {
	if c.version == V2 {
		return f.CRM.V2
	}
	return f.CRM.V1
}

// Stat returns, per active user, the leads in work created this month and
// the leads processed this month.
func (c *Client) Stat(ctx context.Context) ([]UserStat, error) {
	return c.stat(ctx, params{})
}

// StatBetween is Stat for the days from..to inclusive (dates taken in each
// time's own location). Only v2 supports it; v1 returns an error matching
// errors.ErrUnsupported.
func (c *Client) StatBetween(ctx context.Context, from, to time.Time) ([]UserStat, error) {
	if c.version != V2 {
		return nil, fmt.Errorf("crmclient: stat: a date range needs API v2: %w", errors.ErrUnsupported)
	}
	if from.IsZero() || to.IsZero() {
		return nil, errors.New("crmclient: stat: both dates are required")
	}
	f, t := from.Format(time.DateOnly), to.Format(time.DateOnly)
	if f > t {
		return nil, fmt.Errorf("crmclient: stat: from %s is after to %s", f, t)
	}
	var p params
	p.set("dateStart", f)
	p.set("dateEnd", t)
	return c.stat(ctx, p)
}

func (c *Client) stat(ctx context.Context, p params) ([]UserStat, error) {
	a, err := c.do(ctx, actionStat, p)
	if err != nil {
		return nil, err
	}
	st, ae, err := decodeStat(a.body)
	switch {
	case ae != nil:
		return nil, c.apiError(actionStat, ae)
	case err != nil:
		return nil, c.decodeError(actionStat, a, err)
	}
	return st, nil
}

// Info returns one lead. For an id the CRM does not know it returns an
// error matching errors.Is(err, ErrNotFound).
func (c *Client) Info(ctx context.Context, id int64) (LeadInfo, error) {
	if id <= 0 {
		return LeadInfo{}, fmt.Errorf("crmclient: info: lead id %d: %w", id, ErrNotFound)
	}
	var p params
	p.set("id", strconv.FormatInt(id, 10))
	a, err := c.do(ctx, actionInfo, p)
	if err != nil {
		return LeadInfo{}, err
	}
	info, found, ae, err := decodeInfo(a.body, c.loc)
	switch {
	case ae != nil:
		return LeadInfo{}, c.apiError(actionInfo, ae)
	case err != nil:
		return LeadInfo{}, c.decodeError(actionInfo, a, err)
	case !found:
		return LeadInfo{}, fmt.Errorf("crmclient: info: lead %d: %w", id, ErrNotFound)
	}
	return info, nil
}
