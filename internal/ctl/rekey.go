package ctl

import (
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
	"leadrelay/producer"
)

// rekeySummary is what `ctl rekey` did. Leads sealed under the sealing
// key already are counted, not opened, so a run again after a stop goes
// quickly over what the first did.
type rekeySummary struct {
	// Key is the data key every lead is sealed under once the run is whole.
	Key string `json:"key"`
	// Looked counts the leads looked at: tasks and dead letters.
	Looked int `json:"looked"`
	// Resealed counts those sealed afresh under Key (plaintext ones too).
	Resealed int `json:"resealed"`
	// Already counts those that were sealed under Key.
	Already int `json:"already"`
	// InFlight are leads a worker held: run rekey again once they settle.
	InFlight []string `json:"in_flight"`
	// Failed are leads that could not be resealed, with why.
	Failed []rekeyFailure `json:"failed"`
}

type rekeyFailure struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// rekey re-seals every stored lead (asynq's tasks in every state, and the
// dead letters) under the first data key.
func (c *cli) rekey(args []string) error {
	fs := c.flags("rekey")
	every := fs.Int("progress", 1000, "report progress on stderr every N leads (0 = never)")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	if err := c.redisData(); err != nil {
		return err
	}
	if !c.codec.Sealing() {
		return errors.New("ctl rekey: LEADRELAY_DATA_KEYS (or LEADRELAY_DATA_KEYS_FILE) is not set: give the keys with the new one first")
	}
	switch n, err := producer.UnsealingWorkers(c.ctx, c.rds.Client, c.cfg.Queue.Name); {
	case err != nil:
		return err
	case n > 0:
		return fmt.Errorf("ctl rekey: %d worker(s) serving the queue cannot open sealed leads (a version before sealing, or run with LEADRELAY_DATA_UNENCRYPTED): upgrade them first, or they would be handed leads they cannot read", n)
	}
	sum := rekeySummary{Key: c.codec.Key(), InFlight: []string{}, Failed: []rekeyFailure{}}
	progress := func() {
		if *every > 0 && sum.Looked%*every == 0 {
			fmt.Fprintf(c.errw, "rekey: %d looked at, %d resealed\n", sum.Looked, sum.Resealed)
		}
	}
	err := c.rekeyTasks(&sum, progress)
	if err == nil {
		err = c.rekeyDead(&sum, progress)
	}
	if perr := c.printRekey(sum); err == nil {
		err = perr
	}
	switch {
	case err != nil:
		return err
	case len(sum.Failed) > 0:
		return fmt.Errorf("rekey failed for %d lead(s)", len(sum.Failed))
	}
	return nil
}

// rekeyTasks reseals the lead tasks asynq holds, state by state.
func (c *cli) rekeyTasks(sum *rekeySummary, progress func()) error {
	store := rdb.New(c.rds.Client)
	queue := c.cfg.Queue.Name
	_, err := c.reader(queue).Scan(c.ctx, 0, func(_ string, info *asynq.TaskInfo, _ lead.Payload) bool {
		ch, err := rdb.PayloadKept, error(nil)
		if env, eerr := lead.ReadEnvelope(info.Payload); eerr != nil || env.Key != sum.Key {
			ch, err = store.ChangeTaskPayload(c.ctx, queue, info.ID, c.codec.Reseal)
		}
		sum.count(info.ID, ch, err)
		progress()
		return true
	})
	if err != nil {
		return fmt.Errorf("rekey: %w", err)
	}
	return nil
}

// rekeyDead reseals the dead letters' payloads.
func (c *cli) rekeyDead(sum *rekeySummary, progress func()) error {
	ids, _, err := c.dead.IDs(c.ctx, deadletter.Filter{})
	if err != nil {
		return err
	}
	for _, id := range ids {
		changed, err := c.dead.ChangePayload(c.ctx, id, c.codec.Reseal)
		switch {
		case errors.Is(err, deadletter.ErrNotFound):
			continue // purged meanwhile
		case changed:
			sum.count(id, rdb.PayloadChanged, nil)
		default:
			sum.count(id, rdb.PayloadKept, err)
		}
		progress()
	}
	return nil
}

// count adds one lead's outcome to the summary.
func (s *rekeySummary) count(id string, ch rdb.PayloadChange, err error) {
	s.Looked++
	switch {
	case err != nil:
		s.Failed = append(s.Failed, rekeyFailure{ID: id, Error: err.Error()})
	case ch == rdb.PayloadChanged:
		s.Resealed++
	case ch == rdb.PayloadActive:
		s.InFlight = append(s.InFlight, id)
	case ch == rdb.PayloadKept:
		s.Already++
	}
}

func (c *cli) printRekey(sum rekeySummary) error {
	if c.json {
		return c.emit(sum)
	}
	fmt.Fprintf(c.out, "rekey to %s: looked at %d, resealed %d, already under it %d, in flight %d, failed %d\n",
		sum.Key, sum.Looked, sum.Resealed, sum.Already, len(sum.InFlight), len(sum.Failed))
	for _, id := range sum.InFlight {
		fmt.Fprintf(c.out, "in flight %s: a worker holds it; run rekey again once it settles\n", id)
	}
	for _, f := range sum.Failed {
		fmt.Fprintf(c.out, "failed %s: %s\n", f.ID, f.Error)
	}
	return nil
}
