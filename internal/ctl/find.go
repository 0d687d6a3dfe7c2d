package ctl

import (
	"errors"
	"fmt"
	"strings"

	"leadrelay/status"
)

// foundLead is one match of `ctl lead find`.
type foundLead struct {
	ID         string `json:"id"`
	Site       string `json:"site"`
	TaskState  string `json:"task_state"`
	ReceivedAt string `json:"received_at"`
	Title      string `json:"title,omitempty"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
}

// findAnswer is what `ctl --json lead find` prints.
type findAnswer struct {
	Leads []foundLead `json:"leads"`
	// Truncated is true when the queue held more tasks than one scan reads.
	Truncated bool `json:"truncated,omitempty"`
}

// leadFind finds the relay's recent leads by e-mail or phone: every task
// asynq holds (pending to completed, while retained: LEADRELAY_DEDUP_TTL)
// and the dead-letter store.
func (c *cli) leadFind(args []string) error {
	fs := c.flags("lead find")
	email := fs.String("email", "", "the e-mail address, any case")
	phone := fs.String("phone", "", "the phone number; only its digits are compared")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	if *email == "" && *phone == "" {
		return &UsageError{"ctl lead find: give --email or --phone"}
	}
	if err := c.redisData(); err != nil {
		return err
	}
	found, err := c.reader(c.cfg.Queue.Name).Find(c.ctx, status.Query{Email: *email, Phone: *phone}, maxScan)
	if errors.Is(err, status.ErrQuery) {
		return &UsageError{fmt.Sprintf("ctl lead find: --phone %q holds fewer than 3 digits", *phone)}
	}
	if err != nil {
		return err
	}
	ans := findAnswer{Leads: []foundLead{}, Truncated: found.Truncated}
	for _, l := range found.Leads {
		ans.Leads = append(ans.Leads, foundLead{ID: l.ID, Site: l.Site, TaskState: l.State, ReceivedAt: stamp(l.ReceivedAt),
			Title: l.Lead.Title, Email: l.Lead.Email, Phone: l.Lead.Phone})
	}
	if err := c.printFound(ans); err != nil {
		return err
	}
	if len(ans.Leads) == 0 {
		return &NotFoundError{What: "lead with", ID: strings.TrimSpace(*email + " " + *phone)}
	}
	return nil
}

func (c *cli) printFound(ans findAnswer) error {
	if c.json {
		return c.emit(ans)
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tSITE\tSTATE\tRECEIVED\tTITLE\tEMAIL\tPHONE")
	for _, l := range ans.Leads {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Site, l.TaskState, l.ReceivedAt, clip(l.Title, 30), clip(l.Email, 40), clip(l.Phone, 20))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%d leads (searched what asynq retains, LEADRELAY_DEDUP_TTL, and the dead-letter store)\n", len(ans.Leads))
	if ans.Truncated {
		fmt.Fprintf(c.out, "(the queue holds more than %d tasks: only the first were searched)\n", maxScan)
	}
	return nil
}
