package audit

import (
	"context"
	"time"

	"go.uber.org/zap"

	"leadrelay/notify"
)

// settle records v's finds in Redis and fills rep: a suspect still
// unexplained Settle after it was first seen becomes a duplicate. Each
// find no audit recorded before is logged and notified.
func (a *Auditor) settle(ctx context.Context, now time.Time, v verdict, rep *Report) error {
	keep := 2 * a.o.Window
	if len(v.suspects) > 0 {
		keys := make([]string, len(v.suspects))
		for i, f := range v.suspects {
			keys[i] = f.key(kindSuspect)
		}
		first, _, err := a.store.AuditNote(ctx, keys, now, keep)
		if err != nil {
			return err
		}
		for i, f := range v.suspects {
			if now.Sub(first[i]) >= a.o.Settle {
				v.duplicates = append(v.duplicates, f)
			} else {
				rep.Settling++
			}
		}
	}
	keys := make([]string, 0, len(v.duplicates)+len(v.missing))
	for _, f := range v.duplicates {
		keys = append(keys, f.key(kindDuplicate))
	}
	for _, f := range v.missing {
		keys = append(keys, f.key(kindMissing))
	}
	_, fresh, err := a.store.AuditNote(ctx, keys, now, keep)
	if err != nil {
		return err
	}
	rep.Duplicates, rep.Missing = v.duplicates, v.missing
	for i, f := range v.duplicates {
		if fresh[i] {
			rep.NewDuplicates++
			a.tell(notify.AuditDuplicate, f, rep.NewDuplicates+rep.NewMissing)
		}
	}
	for i, f := range v.missing {
		if fresh[len(v.duplicates)+i] {
			rep.NewMissing++
			a.tell(notify.AuditMissing, f, rep.NewDuplicates+rep.NewMissing)
		}
	}
	return nil
}

// tell logs a new find and notifies it, the first maxNotified of an audit.
func (a *Auditor) tell(kind string, f Find, n int) {
	msg := "CRM audit: a lead is in the CRM twice"
	if kind == notify.AuditMissing {
		msg = "CRM audit: a delivered lead is not in the CRM"
	}
	a.o.Log.Error(msg, zap.String("lead_id", f.LeadID), zap.String("site", f.Site), zap.Int64("crm_id", f.CRMID))
	if n <= maxNotified {
		a.o.Notifier.Notify(notify.Event{Kind: kind, Site: f.Site, LeadID: f.LeadID, CRMID: f.CRMID})
	}
}
