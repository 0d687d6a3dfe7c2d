package ctl

import (
	"fmt"

	"leadrelay/audit"
	"leadrelay/crm"
	"leadrelay/crm/versions"
	"leadrelay/internal/fleetclock"
	"leadrelay/internal/rdb"
)

// auditCmd shows the fleet's latest CRM audit (the workers run one every
// LEADRELAY_AUDIT_INTERVAL), or runs one now with --now.
func (c *cli) auditCmd(args []string) error {
	fs := c.flags("audit")
	now := fs.Bool("now", false, "audit now (reads the CRM) instead of showing the workers' latest audit")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	if err := c.redisData(); err != nil {
		return err
	}
	var rep audit.Report
	if *now {
		var err error
		if rep, err = c.auditNow(); err != nil {
			return err
		}
	} else {
		r, ok, err := audit.Last(c.ctx, c.rds.Client)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(c.errw, "no CRM audit in the last two intervals: is a worker running, with LEADRELAY_AUDIT_INTERVAL above 0? ctl audit --now runs one")
			return &NotFoundError{What: "CRM audit", ID: "report"}
		}
		rep = r
	}
	if c.json {
		return c.emit(rep)
	}
	fmt.Fprintln(c.out, rep.Line())
	for _, f := range rep.Duplicates {
		fmt.Fprintf(c.out, "duplicate: lead %s of site %s is also CRM lead %d\n", f.LeadID, f.Site, f.CRMID)
	}
	for _, f := range rep.Missing {
		fmt.Fprintf(c.out, "missing:   lead %s of site %s was delivered as CRM lead %d, which the CRM does not list\n", f.LeadID, f.Site, f.CRMID)
	}
	if rep.Settling > 0 {
		fmt.Fprintf(c.out, "settling:  %d CRM leads with a delivered lead's content but no record yet; the next audit tells\n", rep.Settling)
	}
	return nil
}

// auditNow runs one audit from here, as a worker would.
func (c *cli) auditNow() (audit.Report, error) {
	client, err := c.openCRM()
	if err != nil {
		return audit.Report{}, err
	}
	// The fleet's clock, as a worker keeps it: the audit and the v1
	// journal's refresh compare times the workers wrote.
	store := rdb.New(c.rds.Client)
	clock := fleetclock.New(c.o.Now)
	if err := clock.Sync(c.ctx, store, c.o.Log); err != nil {
		return audit.Report{}, err
	}
	api, err := versions.For(crm.Env{Client: client, Store: store, Timeout: c.cfg.CRM.Timeout, Clock: clock.Now, Log: c.o.Log})
	if err != nil {
		return audit.Report{}, err
	}
	return audit.New(api, c.rds.Client, audit.Options{Queue: c.cfg.Queue.Name, Interval: c.cfg.Worker.AuditInterval,
		Window: c.cfg.Worker.AuditWindow, Settle: c.cfg.Worker.ReconcileAfter + c.cfg.CRM.Timeout,
		Codec: c.codec, Clock: clock.Now, Log: c.o.Log}).Run(c.ctx)
}
