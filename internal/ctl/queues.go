package ctl

import (
	"errors"
	"fmt"
	"slices"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"leadrelay/worker"
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
	OldestSec int   `json:"oldest_pending_seconds"`
	Paused    bool  `json:"paused"`
}

func (c *cli) queues(args []string) error {
	fs := c.flags("queues")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("queues", pos, 0); err != nil {
		return err
	}
	if err := c.redis(); err != nil {
		return err
	}
	names, err := c.insp.Queues()
	if err != nil {
		return fmt.Errorf("queues: %w", err)
	}
	// asynq knows a queue once a task was put on it: a fresh relay's
	// queue is shown empty, not as an error.
	known := slices.Clone(names)
	if !slices.Contains(names, c.cfg.Queue) {
		names = append(names, c.cfg.Queue)
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
		if q == c.cfg.Queue {
			n, err := c.rds.Client.Get(c.ctx, worker.DeliveredCountKey(c.o.Now())).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("delivered today: %w", err)
			}
			r.Delivered = n
		}
		rows = append(rows, r)
	}
	if c.json {
		return c.emit(rows)
	}
	tw := c.table()
	fmt.Fprintln(tw, "QUEUE\tPENDING\tACTIVE\tSCHEDULED\tRETRYING\tARCHIVED\tDEAD\tCOMPLETED\tDELIVERED TODAY\tPROCESSED TODAY\tFAILED TODAY\tOLDEST PENDING")
	for _, r := range rows {
		name := r.Queue
		if r.Paused {
			name += " (paused)"
		}
		oldest := "-"
		if r.Pending > 0 {
			oldest = age(secs(r.OldestSec))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", name, r.Pending, r.Active, r.Scheduled,
			r.Retrying, r.Archived, r.Dead, r.Completed, r.Delivered, r.Processed, r.Failed, oldest)
	}
	return tw.Flush()
}
