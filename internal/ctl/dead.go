package ctl

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"leadrelay/deadletter"
	"leadrelay/delivery"
)

// deadItem is a dead lead as `dead list` shows it: no personal data.
type deadItem struct {
	LeadID     string        `json:"lead_id"`
	Site       string        `json:"site"`
	Queue      string        `json:"queue"`
	ReasonCode delivery.Code `json:"reason_code"`
	Reason     string        `json:"reason"` // the operators' text
	Attempts   int           `json:"attempts"`
	DeadAt     time.Time     `json:"dead_at"`
	ReceivedAt time.Time     `json:"received_at,omitzero"`
}

// filterFlags adds --site and --since to fs.
func filterFlags(fs *flag.FlagSet) (site, since *string) {
	site, since = new(string), new(string)
	fs.StringVar(site, "site", "", "only leads of this site")
	fs.StringVar(since, "since", "", "only leads dead since D (24h, 7d, 2026-03-01)")
	return site, since
}

func (c *cli) deadList(args []string) error {
	fs := c.flags("dead list")
	site, since := filterFlags(fs)
	limit := fs.Int("limit", 50, "at most N leads (0 = all)")
	offset := fs.Int("offset", 0, "skip the N newest matches")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	if *limit < 0 || *offset < 0 {
		return &UsageError{"ctl dead list: --limit and --offset must not be negative"}
	}
	from, err := parseSince(*since, c.o.Now())
	if err != nil {
		return err
	}
	if err := c.redis(); err != nil {
		return err
	}
	recs, total, err := c.dead.List(c.ctx, deadletter.Filter{Site: *site, Since: from, Limit: *limit, Offset: *offset})
	if err != nil {
		return err
	}
	items := make([]deadItem, len(recs))
	for i, r := range recs {
		items[i] = deadItem{LeadID: r.LeadID, Site: r.Site, Queue: r.Queue, ReasonCode: r.Reason.Code, Reason: r.Reason.Text(delivery.Operators),
			Attempts: r.Attempts, DeadAt: r.DeadAt, ReceivedAt: r.ReceivedAt}
	}
	if c.json {
		return c.emit(struct {
			Total int        `json:"total"`
			Leads []deadItem `json:"leads"` // the HTTP API's name (GET /ops/dead)
		}{total, items})
	}
	tw := c.table()
	fmt.Fprintln(tw, "LEAD ID\tSITE\tREASON\tATTEMPTS\tAGE")
	now := c.o.Now()
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", it.LeadID, it.Site, clip(it.Reason, 70), it.Attempts, age(now.Sub(it.DeadAt)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%d of %d dead leads\n", len(items), total)
	return nil
}

func (c *cli) deadShow(args []string) error {
	fs := c.flags("dead show")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	if err := c.redisData(); err != nil {
		return err
	}
	r, err := c.dead.Get(c.ctx, pos[0])
	if errors.Is(err, deadletter.ErrNotFound) {
		return &NotFoundError{What: "dead lead", ID: pos[0]}
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(r)
	}
	p, _ := c.openTask(r.Payload) // a payload that does not open still shows the rest
	tw := c.table()
	kvRow(tw, "Lead ID", r.LeadID)
	kvRow(tw, "Site", r.Site)
	kvRow(tw, "Queue", r.Queue)
	kvRow(tw, "Reason", r.Reason.Text(delivery.Operators))
	kvRow(tw, "Reason code", string(r.Reason.Code))
	kvRow(tw, "Attempts", fmt.Sprint(r.Attempts))
	kvRow(tw, "Dead at", fmt.Sprintf("%s (%s ago)", stamp(r.DeadAt), age(c.o.Now().Sub(r.DeadAt))))
	kvRow(tw, "Received at", stamp(r.ReceivedAt))
	kvRow(tw, "Idempotency key", p.IdempotencyKey)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.out, "\nLead:")
	tw = c.table()
	leadRows(tw, &p.Lead)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "\nError history (oldest first, last %d kept):\n", deadletter.MaxErrors)
	tw = c.table()
	fmt.Fprintln(tw, "  AT\tATTEMPT\tCLASS\tERROR")
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", stamp(e.At), e.Attempt, e.Class, clip(e.Reason.Text(delivery.Operators), 200))
	}
	return tw.Flush()
}

func (c *cli) deadRequeue(args []string) error {
	fs := c.flags("dead requeue")
	site, since := filterFlags(fs)
	all := fs.Bool("all", false, "requeue every dead lead (with --site/--since: those)")
	every := fs.Int("progress", 1000, "report progress on stderr every N leads (0 = never)")
	ids, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *all && len(ids) > 0:
		return &UsageError{"ctl dead requeue: give lead ids or --all, not both"}
	case !*all && len(ids) == 0:
		return &UsageError{"ctl dead requeue: give lead ids or --all"}
	case !*all && (*site != "" || *since != ""):
		return &UsageError{"ctl dead requeue: --site and --since go with --all"}
	}
	from, err := parseSince(*since, c.o.Now())
	if err != nil {
		return err
	}
	if err := c.redis(); err != nil {
		return err
	}
	if *all {
		if ids, _, err = c.dead.IDs(c.ctx, deadletter.Filter{Site: *site, Since: from}); err != nil {
			return err
		}
	}
	progress := func(done, total int) {
		if *every > 0 && total >= *every && (done%*every == 0 || done == total) {
			fmt.Fprintf(c.errw, "requeue: %d/%d\n", done, total)
		}
	}
	res, err := c.dead.Requeue(c.ctx, ids, progress)
	if c.json {
		if jerr := c.emit(res); err == nil {
			err = jerr
		}
	} else {
		fmt.Fprintf(c.out, "requeued %d (%d archived tasks run again, %d enqueued afresh); skipped %d, not found %d, failed %d\n",
			res.Requeued(), len(res.Rerun), len(res.Enqueued), len(res.Skipped), len(res.NotFound), len(res.Failed))
		for _, s := range res.Skipped {
			fmt.Fprintf(c.out, "skipped %s: its task is %s\n", s.ID, s.State)
		}
		for _, id := range res.NotFound {
			fmt.Fprintf(c.out, "not found %s\n", id)
		}
		for _, f := range res.Failed {
			fmt.Fprintf(c.out, "failed %s: %s\n", f.ID, f.Error)
		}
	}
	switch {
	case err != nil:
		return err
	case len(res.Failed) > 0:
		return fmt.Errorf("requeue failed for %d lead(s)", len(res.Failed))
	case len(res.NotFound) > 0:
		return &NotFoundError{What: "dead lead", ID: strings.Join(res.NotFound, ", ")}
	}
	return nil
}

func (c *cli) deadPurge(args []string) error {
	fs := c.flags("dead purge")
	site, since := filterFlags(fs)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	from, err := parseSince(*since, c.o.Now())
	if err != nil {
		return err
	}
	if err := c.redis(); err != nil {
		return err
	}
	f := deadletter.Filter{Site: *site, Since: from}
	_, total, err := c.dead.IDs(c.ctx, deadletter.Filter{Site: f.Site, Since: f.Since, Limit: 1})
	if err != nil {
		return err
	}
	if total > 0 && !*yes {
		what := "all dead leads"
		if *site != "" {
			what = "the dead leads of site " + *site
		}
		if *since != "" {
			what += " dead since " + *since
		}
		fmt.Fprintf(c.errw, "Delete %s for good (%d, with their archived tasks)? This cannot be undone. Type yes to continue: ", what, total)
		if !confirmed(c.o.Stdin) {
			fmt.Fprintln(c.errw)
			return ErrAborted
		}
	}
	res, err := c.dead.Purge(c.ctx, f)
	if c.json {
		if jerr := c.emit(res); err == nil {
			err = jerr
		}
	} else {
		fmt.Fprintf(c.out, "purged %d dead leads (%d archived tasks)\n", res.Records, res.Tasks)
	}
	return err
}

// confirmed reads one line and reports whether it says yes.
func confirmed(r io.Reader) bool {
	if r == nil {
		return false
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
