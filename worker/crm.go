package worker

import (
	"context"
	"time"

	"leadrelay/crm"
	"leadrelay/crmclient"
)

// boundCRM is the CRM as this handler's API version reaches it
// (crm.Env.Client): every call is diagnosed and observed once (judgedCRM)
// and bounded by CRMTimeout; every List is admitted by the Limiter, since
// a look-up is a CRM request like any other. An Add is admitted by the run
// itself (Handler.send), which must release its lock on a refusal.
type boundCRM struct {
	judgedCRM
	h *Handler
}

// Add creates a lead within CRMTimeout.
func (c boundCRM) Add(ctx context.Context, l crmclient.Lead) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.h.o.CRMTimeout)
	defer cancel()
	return c.judgedCRM.Add(ctx, l)
}

// Stat answers within CRMTimeout.
func (c boundCRM) Stat(ctx context.Context) ([]crmclient.UserStat, error) {
	ctx, cancel := context.WithTimeout(ctx, c.h.o.CRMTimeout)
	defer cancel()
	return c.judgedCRM.Stat(ctx)
}

// Info answers within CRMTimeout.
func (c boundCRM) Info(ctx context.Context, id int64) (crmclient.LeadInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, c.h.o.CRMTimeout)
	defer cancel()
	return c.judgedCRM.Info(ctx, id)
}

// List fetches one page, trying a transient failure twice more after a
// short pause: a scan of many pages through a flaky CRM would otherwise
// rarely finish.
func (c boundCRM) List(ctx context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error) {
	var err error
	for try := 0; try < 3; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(time.Duration(try*try) * 100 * time.Millisecond):
			}
		}
		var items []crmclient.ListItem
		if items, err = c.list(ctx, o); err == nil || judge(err).class != crmclient.ClassTransient {
			return items, err
		}
	}
	return nil, err
}

// list fetches one page through the Limiter, within CRMTimeout.
func (c boundCRM) list(ctx context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error) {
	done, err := c.h.acquireCRM(ctx)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, c.h.o.CRMTimeout)
	defer cancel()
	items, err := c.judgedCRM.List(lctx, o)
	done(crmOutcome(ctx, err))
	return items, err
}

var _ crm.Client = boundCRM{}
