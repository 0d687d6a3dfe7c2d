package ctl

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// queueRow is one line of `ctl queues`.
type queueRow struct {
	Queue     string `json:"queue"`
	Pending   int    `json:"pending"`
	Active    int    `json:"active"`
	Scheduled int    `json:"scheduled"`
	Retrying  int    `json:"retrying"`
	// Archived are dead tasks asynq still holds (at most 10,000, 90 days).
	Archived int `json:"archived"`
	// Dead are dead leads in LeadRelay's own store, which nothing trims.
	Dead      int `json:"dead"`
	Completed int `json:"completed"`
	Processed int `json:"processed_today"`
	Failed    int `json:"failed_today"`
	// Delivered counts leads the workers recorded in the CRM today (UTC),
	// over every queue they serve; shown on the configured queue's row.
	Delivered int64 `json:"delivered_today"`
	// KeylessRepeats counts, per site, leads sent again without a key
	// within their keyless window today (UTC): answered as new, kept as
	// one; on the configured queue's row.
	KeylessRepeats map[string]int64 `json:"keyless_repeats_today,omitempty"`
	OldestSec      int              `json:"oldest_pending_seconds"`
	Paused         bool             `json:"paused"`
}

func (c *cli) queues(args []string) error {
	fs := c.flags("queues")
	site := fs.String("site", "", "count only this site's leads (reads every task of the queue)")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	if err := c.redis(); err != nil {
		return err
	}
	if *site != "" {
		return c.siteQueues(*site)
	}
	names, err := c.insp.Queues()
	if err != nil {
		return fmt.Errorf("queues: %w", err)
	}
	// asynq knows a queue once a task was put on it: a fresh relay's
	// queue is shown empty, not as an error.
	known := slices.Clone(names)
	if !slices.Contains(names, c.cfg.Queue.Name) {
		names = append(names, c.cfg.Queue.Name)
	}
	slices.Sort(names)
	rows := make([]queueRow, 0, len(names))
	for _, q := range names {
		r := queueRow{Queue: q}
		var info *asynq.QueueInfo
		err := asynq.ErrQueueNotFound
		if slices.Contains(known, q) {
			info, err = c.insp.GetQueueInfo(q)
		}
		switch {
		case errors.Is(err, asynq.ErrQueueNotFound):
		case err != nil:
			return fmt.Errorf("queue %s: %w", q, err)
		default:
			r.Pending, r.Active, r.Scheduled, r.Retrying = info.Pending, info.Active, info.Scheduled, info.Retry
			r.Archived, r.Completed, r.Processed, r.Failed = info.Archived, info.Completed, info.Processed, info.Failed
			r.OldestSec, r.Paused = int(info.Latency.Seconds()), info.Paused
		}
		if r.Dead, err = c.dead.CountQueue(c.ctx, q); err != nil {
			return err
		}
		if q == c.cfg.Queue.Name {
			n, err := rdb.New(c.rds.Client).DeliveredOn(c.ctx, c.o.Now())
			if err != nil {
				return fmt.Errorf("delivered today: %w", err)
			}
			r.Delivered = n
			if r.KeylessRepeats, err = rdb.New(c.rds.Client).KeylessRepeatsOn(c.ctx, c.o.Now()); err != nil {
				return fmt.Errorf("keyless repeats today: %w", err)
			}
		}
		rows = append(rows, r)
	}
	if c.json {
		return emitList(c, rows)
	}
	tw := c.table()
	fmt.Fprintln(tw, "QUEUE\tPENDING\tACTIVE\tWAITING\tDEAD\tDELIVERED TODAY\tOLDEST PENDING")
	archived := 0
	for _, r := range rows {
		name := r.Queue
		if r.Paused {
			name += " (paused)"
		}
		oldest := "-"
		if r.Pending > 0 {
			oldest = age(secs(r.OldestSec))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", name, r.Pending, r.Active, r.Scheduled+r.Retrying, r.Dead, r.Delivered, oldest)
		archived += r.Archived
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printRepeats(c, rows)
	fmt.Fprint(c.out, queuesLegend(archived))
	return nil
}

// printRepeats says how many keyless repeats each site sent today, if any.
func printRepeats(c *cli, rows []queueRow) {
	for _, r := range rows {
		for _, site := range slices.Sorted(maps.Keys(r.KeylessRepeats)) {
			fmt.Fprintf(c.out, "keyless repeats today: %s %d (sent again within LEADRELAY_KEYLESS_WINDOW: answered as new, kept as one)\n",
				site, r.KeylessRepeats[site])
		}
	}
}

// queuesLegend explains the columns that are easy to misread: WAITING and
// DEAD, and how DEAD differs from asynq's archive.
func queuesLegend(archived int) string {
	return fmt.Sprintf(`
WAITING: leads whose next attempt is scheduled (a retry, or postponed by an open circuit or the rate limit).
DEAD:    leads given up, in LeadRelay's dead-letter store, which nothing trims: ctl dead list, ctl dead requeue.
         asynq's archive (the UI's Archived tab) holds %d of them too, but trims itself (90 days, 10,000 tasks).
More columns (processed and failed today, completed): ctl --json queues.
`, archived)
}

// siteRow is `ctl queues --site`: one site's leads in each state.
type siteRow struct {
	Site     string `json:"site"`
	Queue    string `json:"queue"`
	Pending  int    `json:"pending"`
	Active   int    `json:"active"`
	Waiting  int    `json:"waiting"`
	Dead     int    `json:"dead"`
	Archived int    `json:"archived"`
	// Completed counts the site's delivered leads asynq still retains
	// (LEADRELAY_DEDUP_TTL).
	Completed int `json:"completed"`
	// Truncated is true when the queue held more tasks than one scan reads.
	Truncated bool `json:"truncated,omitempty"`
}

func (c *cli) siteQueues(site string) error {
	r := siteRow{Site: site, Queue: c.cfg.Queue.Name}
	truncated, err := c.scanTasks(c.cfg.Queue.Name, func(state string, _ *asynq.TaskInfo, p lead.Payload) bool {
		if p.Site != site {
			return true
		}
		switch state {
		case "pending":
			r.Pending++
		case "active":
			r.Active++
		case "scheduled", "retry":
			r.Waiting++
		case "archived":
			r.Archived++
		case "completed":
			r.Completed++
		}
		return true
	})
	if err != nil {
		return err
	}
	r.Truncated = truncated
	if _, r.Dead, err = c.dead.IDs(c.ctx, deadletter.Filter{Site: site, Limit: 1}); err != nil {
		return err
	}
	if c.json {
		return c.emit(r)
	}
	tw := c.table()
	fmt.Fprintln(tw, "SITE\tQUEUE\tPENDING\tACTIVE\tWAITING\tDEAD\tDELIVERED (RETAINED)")
	fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", r.Site, r.Queue, r.Pending, r.Active, r.Waiting, r.Dead, r.Completed)
	if err := tw.Flush(); err != nil {
		return err
	}
	if truncated {
		fmt.Fprintf(c.out, "(counted the first %d tasks of the queue only)\n", maxScan)
	}
	fmt.Fprint(c.out, queuesLegend(r.Archived))
	return nil
}
