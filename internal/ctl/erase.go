package ctl

import (
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"leadrelay/erasure"
)

// leadErase erases a person's leads: by id, e-mail or phone (package
// erasure). The report goes to stdout, the audit line (ids and counts,
// no personal data) to stderr.
func (c *cli) leadErase(args []string) error {
	fs := c.flags("lead erase")
	var ids []string
	fs.Func("id", "a lead id (repeat for more; ids may also follow the flags)", func(s string) error {
		ids = append(ids, s)
		return nil
	})
	email := fs.String("email", "", "erase every lead with this e-mail address, any case")
	phone := fs.String("phone", "", "erase every lead with this phone number; only its digits are compared")
	wait := fs.Duration("wait", erasure.DefaultWait, "how long to wait for a lead whose delivery is running")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	q := erasure.Query{IDs: append(ids, pos...), Email: strings.TrimSpace(*email), Phone: *phone, By: "ctl"}
	if err := c.redisData(); err != nil {
		return err
	}
	e := erasure.New(c.rds.Client, erasure.Options{Queue: c.cfg.Queue.Name, Codec: c.codec, Wait: *wait, Log: c.auditLog()})
	rep, err := e.Erase(c.ctx, q)
	if errors.Is(err, erasure.ErrQuery) {
		return &UsageError{"ctl lead erase: " + err.Error()}
	}
	if perr := c.printErased(rep); perr != nil && err == nil {
		err = perr
	}
	switch {
	case err != nil:
		return err
	case rep.Unreached > 0:
		return fmt.Errorf("%d leads were being delivered and are not erased: run the command again", rep.Unreached)
	case len(rep.Leads) == 0:
		return &NotFoundError{What: "lead to erase", ID: strings.TrimSpace(strings.Join(q.IDs, " ") + " " + q.Email + " " + q.Phone)}
	}
	return nil
}

func (c *cli) printErased(rep erasure.Report) error {
	if c.json {
		return c.emit(rep)
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tSITE\tTASK\tDEAD LETTER\tENTRIES\tNOTE")
	for _, l := range rep.Leads {
		note := l.Unreached
		if l.Undelivered {
			note = "was undelivered: will not be delivered"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%s\n", l.ID, l.Site, or(l.Task, "-"), l.DeadLetter, l.Entries, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "erased: %d tasks, %d dead letters, %d other entries; %d undelivered leads dropped; %d not reached\n",
		rep.Tasks, rep.DeadLetters, rep.Entries, rep.Undelivered, rep.Unreached)
	if rep.Truncated {
		fmt.Fprintln(c.out, "(the search stopped at its bound: run the command again)")
	}
	fmt.Fprintln(c.out, "kept:")
	for _, k := range rep.Kept {
		fmt.Fprintln(c.out, "  - "+k)
	}
	return nil
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// auditLog is the erasure's audit log: Options.Log plus one JSON line on
// stderr, so an operator's terminal or a script's log keeps it.
func (c *cli) auditLog() *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(c.errw), zap.InfoLevel)
	return zap.New(zapcore.NewTee(core, c.o.Log.Core()))
}
