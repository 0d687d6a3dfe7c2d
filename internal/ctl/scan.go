package ctl

import (
	"github.com/hibiken/asynq"

	"leadrelay/lead"
	"leadrelay/status"
)

// maxScan bounds how many tasks a scan of one queue reads (ctl queues
// --site, ctl lead find): a scan reads every payload, and a queue that has
// grown past this needs an operator, not a slow ctl.
const maxScan = 200_000

// reader is the status reader of queue, opening payloads with ctl's keys.
func (c *cli) reader(queue string) *status.Reader {
	return status.New(c.rds.Client, queue).Opening(c.codec)
}

// scanTasks calls f for every lead task of queue (status.Reader.Scan),
// until f returns false. It reports whether it stopped at maxScan.
func (c *cli) scanTasks(queue string, f func(state string, info *asynq.TaskInfo, p lead.Payload) bool) (bool, error) {
	return c.reader(queue).Scan(c.ctx, maxScan, f)
}

// openTask reads a lead task's payload: whole when the configured keys
// open it, else (sealed under a key ctl lacks) its envelope alone, with no
// fields, so counting by site still works without keys.
func (c *cli) openTask(b []byte) (lead.Payload, error) { return c.codec.Peek(b) }
