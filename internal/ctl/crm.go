package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"leadrelay/config"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/app"
)

// openCRM builds the CRM client (LEADRELAY_CRM_URL, never the simulator).
func (c *cli) openCRM() (*crmclient.Client, error) {
	if c.crm == nil {
		if err := c.o.ConfigProblems.For(config.CRMVars...); err != nil {
			return nil, fmt.Errorf("configuration:\n%w", err)
		}
		crm, err := app.OpenCRM(c.ctx, c.cfg, false, c.o.Log)
		if err != nil {
			return nil, err
		}
		c.crm = crm
	}
	return c.crm.Client, nil
}

// crmError adds what to fix to a CRM configuration problem. The client's
// errors never hold the API key.
func crmError(err error) error {
	if d := crmclient.Diagnose(err); d.Class == crmclient.ClassConfig {
		fix := d.Reason
		fix.Detail = "" // the error quotes the CRM already
		return fmt.Errorf("%w (%s)", err, fix.Text(delivery.Operators))
	}
	return err
}

// dateRange reads --since/--until; the CRM wants both or neither.
func dateRange(since, until string) (from, to time.Time, err error) {
	if from, err = parseDate("since", since); err != nil {
		return
	}
	if to, err = parseDate("until", until); err != nil {
		return
	}
	if from.IsZero() != to.IsZero() {
		err = &UsageError{"--since and --until go together (the CRM honours one alone wrongly)"}
	}
	return
}

func (c *cli) crmStat(args []string) error {
	fs := c.flags("crm stat")
	since := fs.String("since", "", "from this date, YYYY-MM-DD (v2)")
	until := fs.String("until", "", "to this date, YYYY-MM-DD (v2)")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	from, to, err := dateRange(*since, *until)
	if err != nil {
		return err
	}
	crm, err := c.openCRM()
	if err != nil {
		return err
	}
	var stats []crmclient.UserStat
	if from.IsZero() {
		stats, err = crm.Stat(c.ctx)
	} else {
		stats, err = crm.StatBetween(c.ctx, from, to)
	}
	if err != nil {
		return crmError(err)
	}
	if c.json {
		return emitList(c, stats)
	}
	tw := c.table()
	fmt.Fprintln(tw, "LOGIN\tIN WORK\tPROCESSED")
	for _, s := range stats {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", clip(s.Login, 64), s.InWork, s.Processed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The CRM's own "open" is status 1: a reader of OPEN 0 beside a list
	// of new leads would think the counts wrong.
	fmt.Fprintln(c.out, "The CRM counts each operator's leads in work (status 1) created in the period and those processed in it;")
	fmt.Fprintln(c.out, "new leads (status 0, not yet taken) count nowhere here: ctl crm list shows them.")
	return nil
}

func (c *cli) crmInfo(args []string) error {
	fs := c.flags("crm info")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return &UsageError{fmt.Sprintf("ctl crm info: %q is not a CRM lead id", pos[0])}
	}
	crm, err := c.openCRM()
	if err != nil {
		return err
	}
	info, err := crm.Info(c.ctx, id)
	if errors.Is(err, crmclient.ErrNotFound) {
		return &NotFoundError{What: "CRM lead", ID: pos[0]}
	}
	if err != nil {
		return crmError(err)
	}
	if c.json {
		return c.emit(info)
	}
	tw := c.table()
	kv := func(k, v string) {
		if v != "" && v != "0" {
			fmt.Fprintf(tw, "%s\t%s\n", clip(k, 64), clip(v, 200))
		}
	}
	kv("ID", fmt.Sprint(info.ID))
	kv("Created", info.Datum.Raw)
	kv("Processed", info.DatumDo.Raw)
	kv("Status", named(info.Status.String(), info.StatusName))
	kv("Result", named(info.Rezult.String(), info.RezultName))
	kv("Title", info.Title)
	kv("Email", info.Email)
	kv("Phone", info.Phone)
	kv("Company", info.Company)
	kv("Site", info.Site)
	kv("Description", info.Description)
	kv("IP", info.IP)
	kv("City", info.City)
	kv("Country", info.Country)
	kv("User", named(fmt.Sprint(info.IDUser), info.UserName))
	kv("Source", named(fmt.Sprint(info.ClientPath), info.ClientPathName))
	kv("Partner", info.Partner)
	kv("Client", info.Client)
	kv("Person", info.Person)
	kv("Deal", info.Deal)
	for _, u := range [][2]string{{"utm_source", info.UTMSource}, {"utm_medium", info.UTMMedium},
		{"utm_campaign", info.UTMCampaign}, {"utm_term", info.UTMTerm}, {"utm_content", info.UTMContent}, {"utm_referrer", info.UTMReferrer}} {
		kv(u[0], u[1])
	}
	for k, v := range info.UIDs {
		kv("uid "+k, v)
	}
	return tw.Flush()
}

func named(code, name string) string {
	if name == "" {
		return code
	}
	return code + " (" + name + ")"
}

func (c *cli) crmList(args []string) error {
	fs := c.flags("crm list")
	since := fs.String("since", "", "created from this date, YYYY-MM-DD (v2; with --until)")
	until := fs.String("until", "", "created up to this date, YYYY-MM-DD (v2; with --since)")
	page := fs.Int("page", 0, "page number from 0 (200 leads a page)")
	all := fs.Bool("all", false, "every page")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	pageSet := false
	fs.Visit(func(f *flag.Flag) { pageSet = pageSet || f.Name == "page" })
	if *all && pageSet {
		return &UsageError{"ctl crm list: --page and --all exclude each other"}
	}
	if *page < 0 {
		return &UsageError{"ctl crm list: --page must not be negative"}
	}
	from, to, err := dateRange(*since, *until)
	if err != nil {
		return err
	}
	crm, err := c.openCRM()
	if err != nil {
		return err
	}
	o := crmclient.ListOptions{Page: *page, DateStart: from, DateEnd: to}
	var items []crmclient.ListItem
	if *all {
		err = crm.Walk(c.ctx, o, func(it crmclient.ListItem) bool { items = append(items, it); return true })
		if errors.Is(err, crmclient.ErrPagingIgnored) {
			fmt.Fprintf(c.errw, "warning: %v; showing the first page only\n", err)
			err = nil
		}
	} else {
		items, err = crm.List(c.ctx, o)
	}
	if err != nil {
		return crmError(err)
	}
	if !from.IsZero() {
		items = c.checkDateFilter(items, from, to)
	}
	if c.json {
		return emitList(c, items)
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tCREATED\tSTATUS\tRESULT\tEMAIL\tPHONE\tCOMPANY\tSITE")
	for _, it := range items {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.ID, it.Datum.Raw, it.Status, it.Rezult,
			clip(it.Email, 40), clip(it.Phone, 20), clip(it.Company, 30), clip(it.Site, 30))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%d leads\n", len(items))
	return nil
}

func (c *cli) health(args []string) error {
	fs := c.flags("health")
	url := fs.String("url", "", "URL to probe (default http://LEADRELAY_HTTP_ADDR/healthz)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	u := *url
	if u == "" {
		u = "http://" + loopback(c.cfg.Server.HTTPAddr) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(c.ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &UsageError{fmt.Sprintf("ctl health: --url %q: %v", u, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: GET %s: %s", u, resp.Status)
	}
	if c.json {
		return c.emit(map[string]any{"url": u, "status": resp.StatusCode})
	}
	fmt.Fprintf(c.out, "ok: GET %s: %s\n", u, resp.Status)
	return nil
}

// loopback turns a listen address into one to dial: ":8080" and
// "0.0.0.0:8080" become "127.0.0.1:8080".
func loopback(addr string) string {
	switch {
	case strings.HasPrefix(addr, ":"):
		return "127.0.0.1" + addr
	case strings.HasPrefix(addr, "0.0.0.0:"):
		return "127.0.0.1" + strings.TrimPrefix(addr, "0.0.0.0")
	case strings.HasPrefix(addr, "[::]:"):
		return "[::1]" + strings.TrimPrefix(addr, "[::]")
	}
	return addr
}

// checkDateFilter catches a CRM that ignored --since/--until (SalesMan's
// v1 list ignores every parameter and sends its newest 200 leads): leads
// created well outside the range (a day's margin for the CRM's time zone)
// mean the filter was not applied. It then says so on stderr and keeps
// only the leads within the range, rather than print another month's leads
// as if they matched.
func (c *cli) checkDateFilter(items []crmclient.ListItem, from, to time.Time) []crmclient.ListItem {
	end := to.AddDate(0, 0, 1) // --until is inclusive
	outside := 0
	for _, it := range items {
		t := it.Datum.Time
		if !t.IsZero() && (t.Before(from.AddDate(0, 0, -1)) || !t.Before(end.AddDate(0, 0, 1))) {
			outside++
		}
	}
	if outside == 0 {
		return items
	}
	kept := make([]crmclient.ListItem, 0, len(items))
	for _, it := range items {
		if t := it.Datum.Time; !t.IsZero() && !t.Before(from) && t.Before(end) {
			kept = append(kept, it)
		}
	}
	fmt.Fprintf(c.errw, "warning: the CRM ignored --since/--until (SalesMan's v1 list ignores its parameters and returns "+
		"its newest leads): %d of the %d leads it sent were created outside %s..%s; showing the %d within the range, "+
		"which may not be all of them (LEADRELAY_CRM_API=v2 filters by date)\n",
		outside, len(items), from.Format(time.DateOnly), to.Format(time.DateOnly), len(kept))
	return kept
}
