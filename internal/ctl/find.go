package ctl

import (
	"fmt"
	"strings"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/lead"
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
	wantDigits := digitsOf(*phone)
	switch {
	case *email == "" && *phone == "":
		return &UsageError{"ctl lead find: give --email or --phone"}
	case *phone != "" && len(wantDigits) < 3:
		return &UsageError{fmt.Sprintf("ctl lead find: --phone %q holds fewer than 3 digits", *phone)}
	}
	match := func(l lead.Lead) bool {
		return (*email == "" || strings.EqualFold(strings.TrimSpace(l.Email), strings.TrimSpace(*email))) &&
			(*phone == "" || digitsOf(l.Phone) == wantDigits || strings.HasSuffix(digitsOf(l.Phone), wantDigits) && len(wantDigits) >= 7)
	}
	if err := c.redisData(); err != nil {
		return err
	}
	ans := findAnswer{Leads: []foundLead{}}
	seen := map[string]bool{}
	add := func(state string, p lead.Payload) {
		if seen[p.ID] || !match(p.Lead) {
			return
		}
		seen[p.ID] = true
		ans.Leads = append(ans.Leads, foundLead{ID: p.ID, Site: p.Site, TaskState: state, ReceivedAt: stamp(p.ReceivedAt),
			Title: p.Lead.Title, Email: p.Lead.Email, Phone: p.Lead.Phone})
	}
	var err error
	ans.Truncated, err = c.scanTasks(c.cfg.Queue.Name, func(state string, _ *asynq.TaskInfo, p lead.Payload) bool {
		add(state, p)
		return true
	})
	if err != nil {
		return err
	}
	recs, _, err := c.dead.List(c.ctx, deadletter.Filter{Limit: maxScan})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if p, err := c.codec.Decode(r.Payload); err == nil {
			add("dead", p)
		}
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

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
