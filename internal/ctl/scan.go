package ctl

import (
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"leadrelay/internal/seal"
	"leadrelay/lead"
)

// maxScan bounds how many tasks a scan of one queue reads (ctl queues
// --site, ctl lead find): a scan reads every payload, and a queue that has
// grown past this needs an operator, not a slow ctl.
const maxScan = 200_000

// scanPage is how many tasks one inspector call reads.
const scanPage = 1000

// taskStates are the asynq states a lead task can be in, with how ctl
// names them.
var taskStates = []struct {
	name string
	list func(insp *asynq.Inspector, queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
}{
	{"pending", (*asynq.Inspector).ListPendingTasks},
	{"active", (*asynq.Inspector).ListActiveTasks},
	{"scheduled", (*asynq.Inspector).ListScheduledTasks},
	{"retry", (*asynq.Inspector).ListRetryTasks},
	{"archived", (*asynq.Inspector).ListArchivedTasks},
	{"completed", (*asynq.Inspector).ListCompletedTasks},
}

// scanTasks calls f for every lead task of queue (completed ones too,
// while asynq retains them), state by state, until f returns false. It
// reports whether it stopped at maxScan.
func (c *cli) scanTasks(queue string, f func(state string, info *asynq.TaskInfo, p lead.Payload) bool) (bool, error) {
	seen := 0
	for _, st := range taskStates {
		for page := 1; ; page++ {
			infos, err := st.list(c.insp, queue, asynq.PageSize(scanPage), asynq.Page(page))
			if err != nil {
				return false, fmt.Errorf("scan %s tasks of %s: %w", st.name, queue, err)
			}
			for _, info := range infos {
				p, err := c.openTask(info.Payload)
				if err != nil {
					continue // not a lead task
				}
				if !f(st.name, info, p) {
					return false, nil
				}
			}
			seen += len(infos)
			if seen >= maxScan {
				return true, nil
			}
			if len(infos) < scanPage {
				break
			}
		}
	}
	return false, nil
}

// openTask reads a lead task's payload: whole when the configured keys
// open it, else (sealed under a key ctl lacks) its envelope alone, with no
// fields, so counting by site still works without keys.
func (c *cli) openTask(b []byte) (lead.Payload, error) {
	p, err := c.codec.Decode(b)
	var unknown *seal.UnknownKeyError
	if err == nil || !errors.As(err, &unknown) {
		return p, err
	}
	env, err := lead.ReadEnvelope(b)
	if err != nil {
		return lead.Payload{}, err
	}
	return lead.Payload{ID: env.ID, Site: env.Site, ReceivedAt: env.ReceivedAt, Sum: env.Sum}, nil
}
