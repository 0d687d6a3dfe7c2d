package v2_test

import (
	"errors"
	"testing"
	"time"

	"leadrelay/crm"
	"leadrelay/crm/crmtest"
	v2 "leadrelay/crm/v2"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

func TestLookUp(t *testing.T) {
	t.Parallel()
	unreachable := &crmclient.TransportError{Action: "list", Err: errors.New("connection refused")}
	// Each case prepares the CRM for lead p, whose add was uncertain, and
	// returns the attempt record the look-up starts from.
	tests := []struct {
		name    string
		prep    func(t *testing.T, c *crmtest.CRM, api *v2.API, env crm.Env, p lead.Payload) rdb.Attempt
		want    crm.Finding
		wantErr bool
		lists   int // at most, when > 0
	}{
		{name: "stamped", want: crm.Found,
			prep: func(t *testing.T, c *crmtest.CRM, api *v2.API, _ crm.Env, p lead.Payload) rdb.Attempt {
				crmtest.Others(t, c, 3)
				send(t, api, p)
				crmtest.Others(t, c, 3)
				return rdb.Attempt{}
			}},
		{name: "not stored", want: crm.NotFound,
			prep: func(t *testing.T, c *crmtest.CRM, _ *v2.API, _ crm.Env, _ lead.Payload) rdb.Attempt {
				crmtest.Others(t, c, 3)
				return rdb.Attempt{}
			}},
		{name: "the stamp of another lead of the same content", want: crm.NotFound,
			prep: func(t *testing.T, _ *crmtest.CRM, api *v2.API, _ crm.Env, p lead.Payload) rdb.Attempt {
				twin := lead.NewPayload(p.Site, "twin", p.Lead, p.ReceivedAt)
				send(t, api, twin)
				return rdb.Attempt{}
			}},
		{name: "stampless: by content", want: crm.Found,
			prep: func(t *testing.T, c *crmtest.CRM, api *v2.API, _ crm.Env, p lead.Payload) rdb.Attempt {
				c.NoStamp = true
				send(t, api, p)
				return rdb.Attempt{}
			}},
		{name: "stampless: by what the client sent", want: crm.Found,
			prep: func(t *testing.T, c *crmtest.CRM, api *v2.API, _ crm.Env, p lead.Payload) rdb.Attempt {
				c.NoStamp = true
				c.Transform = func(l crmclient.Lead) crmclient.Lead {
					l.Description += "\nIP: 192.0.2.7"
					return l
				}
				send(t, api, p)
				return rdb.Attempt{}
			}},
		{name: "stampless: the content match claimed by another lead", want: crm.NotFound,
			prep: func(t *testing.T, c *crmtest.CRM, api *v2.API, env crm.Env, p lead.Payload) rdb.Attempt {
				c.NoStamp = true
				id := send(t, api, p)
				if ok, err := crm.Claim(t.Context(), env.Store, id, "another lead"); !ok || err != nil {
					t.Fatalf("claim = %v, %v", ok, err)
				}
				return rdb.Attempt{}
			}},
		{name: "a page of ids up to the watermark, the lead's second going on", want: crm.Found,
			prep: func(t *testing.T, c *crmtest.CRM, api *v2.API, _ crm.Env, p lead.Payload) rdb.Attempt {
				// As the real CRM lists one second's leads, in ascending
				// ids: the newest page holds only ids up to the watermark,
				// and the lead follows on the next page.
				at := time.Now().Truncate(time.Second)
				c.WholeSeconds, c.Now = true, func() time.Time { return at }
				crmtest.Others(t, c, 250)
				send(t, api, p)
				return rdb.Attempt{Watermark: 250, FirstAt: at}
			}},
		{name: "beyond the first page", want: crm.Found,
			prep: func(t *testing.T, c *crmtest.CRM, api *v2.API, _ crm.Env, p lead.Payload) rdb.Attempt {
				send(t, api, p)
				crmtest.Others(t, c, 450)
				return rdb.Attempt{}
			}},
		{name: "down to the watermark only", want: crm.NotFound, lists: 1,
			prep: func(t *testing.T, c *crmtest.CRM, _ *v2.API, _ crm.Env, _ lead.Payload) rdb.Attempt {
				crmtest.Others(t, c, 450)
				return rdb.Attempt{Watermark: c.Top()}
			}},
		{name: "down to leads older than the first send", want: crm.NotFound, lists: 1,
			prep: func(t *testing.T, c *crmtest.CRM, _ *v2.API, _ crm.Env, _ lead.Payload) rdb.Attempt {
				c.Now = func() time.Time { return time.Now().Add(-72 * time.Hour) }
				crmtest.Others(t, c, 450)
				return rdb.Attempt{FirstAt: time.Now()}
			}},
		{name: "a CRM that ignores paging", want: crm.CannotTell,
			prep: func(t *testing.T, c *crmtest.CRM, _ *v2.API, _ crm.Env, _ lead.Payload) rdb.Attempt {
				c.IgnorePaging = true
				crmtest.Others(t, c, 450)
				return rdb.Attempt{}
			}},
		{name: "a list that fails", want: crm.CannotTell, wantErr: true,
			prep: func(_ *testing.T, c *crmtest.CRM, _ *v2.API, _ crm.Env, _ lead.Payload) rdb.Attempt {
				c.ListErr = unreachable
				return rdb.Attempt{}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := crmtest.New(crmclient.V2)
			env := crmtest.Env(t, c)
			api := v2.New(env)
			p := crmtest.Lead(tc.name)
			a := tc.prep(t, c, api, env, p)
			before := c.Lists()
			res, err := api.LookUp(t.Context(), p, a)
			if (err != nil) != tc.wantErr || res.Finding != tc.want {
				t.Fatalf("LookUp = %+v, %v; want %v (error %v)", res, err, tc.want, tc.wantErr)
			}
			if tc.lists > 0 && c.Lists()-before > tc.lists {
				t.Errorf("listed %d pages, want at most %d", c.Lists()-before, tc.lists)
			}
			if res.Finding == crm.Found {
				if item := find(t, c, res.CRMID); item.Company != p.Lead.Company {
					t.Errorf("found CRM lead %d of %q, want %q", res.CRMID, item.Company, p.Lead.Company)
				}
			}
		})
	}
}

// send adds p through api and returns its CRM id.
func send(t *testing.T, api *v2.API, p lead.Payload) int64 {
	t.Helper()
	id, err := api.Add(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// find returns the CRM lead id.
func find(t *testing.T, c *crmtest.CRM, id int64) crmclient.ListItem {
	t.Helper()
	for page := 0; ; page++ {
		items, _ := c.List(t.Context(), crmclient.ListOptions{Page: page})
		if len(items) == 0 {
			t.Fatalf("no CRM lead %d", id)
		}
		for _, it := range items {
			if it.ID == id {
				return it
			}
		}
	}
}

func TestAddStamps(t *testing.T) {
	t.Parallel()
	c := crmtest.New(crmclient.V2)
	p := crmtest.Lead("stamped")
	if _, err := v2.New(crm.Env{Client: c}).Add(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	items, _ := c.List(t.Context(), crmclient.ListOptions{})
	if len(items) != 1 || items[0].UIDs[v2.UIDKey] != p.ID {
		t.Fatalf("CRM leads = %+v, want one stamped %s=%s", items, v2.UIDKey, p.ID)
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	crmtest.RunPreflight(t, crmclient.V2, func(env crm.Env) crm.API { return v2.New(env) }, []crmtest.PreflightCase{
		{Name: "works"},
		{Name: "unknown login", StatErr: &crmclient.APIError{Action: "stat", Code: 401}, Want: delivery.ConfigLogin},
		{Name: "unreachable", StatErr: &crmclient.TransportError{Action: "stat", Err: errors.New("refused")}, WantErr: true},
	})
}

// TestWatermark: the watermark follows the delivered top Begin reads, and
// no send is ever held back.
func TestWatermark(t *testing.T) {
	t.Parallel()
	api := v2.New(crm.Env{Client: crmtest.New(crmclient.V2)})
	for _, b := range []rdb.Begun{{Send: true, CRMTop: 7}, {Send: true, CRMTop: 5}, {CRMTop: 9}} {
		if api.Saw(b) {
			t.Fatalf("Saw(%+v) holds a send back", b)
		}
	}
	if got := api.Watermark(); got != 9 {
		t.Fatalf("Watermark = %d, want 9", got)
	}
	if caps := api.Caps(); caps.CountSends || !caps.DeliveredTop {
		t.Fatalf("Caps = %+v, want the delivered top and no send counting", caps)
	}
}
