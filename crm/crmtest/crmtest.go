// Package crmtest is a test kit for packages crm and its versions: a CRM
// in memory that lists what was added as SalesMan does, and an Env around
// it on a private Redis.
package crmtest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"leadrelay/crm"
	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// CRM is a SalesMan CRM in memory: it stores every add (the CRM does not
// de-duplicate) and lists its leads newest first, 200 a page. It
// implements crm.Client and is safe for concurrent use. Set its fields
// before use; SetFail may change what adds do at any time.
type CRM struct {
	// API is the version it speaks.
	API crmclient.APIVersion
	// FirstID is the CRM id before the first lead's: ids count up from
	// FirstID+1 (zero: from 1).
	FirstID int64
	// IgnorePaging answers every List with the newest page, as the shipped
	// v1 does.
	IgnorePaging bool
	// NoStamp stores leads without their uids, as v2 does when its add
	// dies between the insert and the stamp.
	NoStamp bool
	// Transform, when set, is what the client changes on the way: Add
	// stores, and Sent answers, it.
	Transform func(crmclient.Lead) crmclient.Lead
	// ListErr is what List fails with, StatErr Stat and InfoErr Info; Info
	// answers crmclient.ErrNotFound when InfoErr is nil.
	ListErr, StatErr, InfoErr error
	// BeforeList, when set, is asked before each List answers, with its
	// options and the List calls so far (this one included): the leads it
	// returns reach the CRM first, as leads arriving mid-scan do.
	BeforeList func(o crmclient.ListOptions, lists int) []crmclient.Lead
	// Now dates the leads added (default time.Now).
	Now func() time.Time
	// WholeSeconds dates leads in whole seconds and lists them as the real
	// CRM's MariaDB does: newest first by date, and one second's leads in
	// ascending ids, so a page may end partway through a second.
	WholeSeconds bool

	mu    sync.Mutex
	fail  func(n int, l crmclient.Lead) (store bool, err error)
	leads []crmclient.ListItem // oldest first
	adds  int
	lists int
}

var _ crm.Client = (*CRM)(nil)

// New returns an empty CRM speaking v.
func New(v crmclient.APIVersion) *CRM { return &CRM{API: v} }

// Version returns API.
func (c *CRM) Version() crmclient.APIVersion { return c.API }

// SetFail makes fn decide each later add: whether the CRM stores it, and
// the error Add answers (nil: its id). n counts Add calls from 1. A nil fn
// stores every add.
func (c *CRM) SetFail(fn func(n int, l crmclient.Lead) (store bool, err error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = fn
}

// Add stores the lead, as Sent has it, and returns its CRM id, unless
// SetFail's function says otherwise. A ctx done by then fails it as
// crmclient reports a call cut short after sending.
func (c *CRM) Add(ctx context.Context, l crmclient.Lead) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adds++
	store, err := true, error(nil)
	if c.fail != nil {
		store, err = c.fail(c.adds, l)
	}
	var id int64
	if store {
		id = c.storeLocked(l)
	}
	if err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, &crmclient.TransportError{Action: "add", Sent: true, Err: ctx.Err()}
	}
	return id, nil
}

// Store stores l as the CRM commits a lead on its own (an add that was
// cut off and lands late), without an Add call, and returns its id.
func (c *CRM) Store(l crmclient.Lead) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.storeLocked(l)
}

// storeLocked stores l, as Sent has it, as a new CRM lead; c.mu is held.
func (c *CRM) storeLocked(l crmclient.Lead) int64 {
	l = c.Sent(l)
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	if c.WholeSeconds {
		now = now.Truncate(time.Second)
	}
	it := crmclient.ListItem{ID: c.FirstID + int64(len(c.leads)) + 1, Datum: crmclient.Datum{Time: now},
		ListContact: crmclient.ListContact{Email: l.Email, Phone: l.Phone, Company: l.Company, Content: l.Description}}
	if c.API == crmclient.V2 && !c.NoStamp {
		it.UIDs = l.UIDs
	}
	c.leads = append(c.leads, it)
	return it.ID
}

// List answers one page of leads, newest first.
func (c *CRM) List(_ context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists++
	if c.ListErr != nil {
		return nil, c.ListErr
	}
	if c.BeforeList != nil {
		for _, l := range c.BeforeList(o, c.lists) {
			c.storeLocked(l)
		}
	}
	page := o.Page
	if c.IgnorePaging {
		page = 0
	}
	listed := c.newestFirst()
	from := min(page*crmclient.PageSize, len(listed))
	return slices.Clone(listed[from:min(from+crmclient.PageSize, len(listed))]), nil
}

// newestFirst is every lead in the order List pages through; c.mu is held.
func (c *CRM) newestFirst() []crmclient.ListItem {
	out := slices.Clone(c.leads)
	slices.Reverse(out)
	if c.WholeSeconds {
		slices.SortStableFunc(out, func(a, b crmclient.ListItem) int {
			if c := b.Datum.Time.Compare(a.Datum.Time); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
	}
	return out
}

// Stat answers StatErr.
func (c *CRM) Stat(context.Context) ([]crmclient.UserStat, error) { return nil, c.StatErr }

// Info answers InfoErr, or else crmclient.ErrNotFound.
func (c *CRM) Info(context.Context, int64) (crmclient.LeadInfo, error) {
	if c.InfoErr != nil {
		return crmclient.LeadInfo{}, c.InfoErr
	}
	return crmclient.LeadInfo{}, crmclient.ErrNotFound
}

// Sent is l through Transform.
func (c *CRM) Sent(l crmclient.Lead) crmclient.Lead {
	if c.Transform != nil {
		return c.Transform(l)
	}
	return l
}

// Lists counts the List calls so far.
func (c *CRM) Lists() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists
}

// Counts returns the Add calls so far and the leads stored.
func (c *CRM) Counts() (adds, stored int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adds, len(c.leads)
}

// Leads returns the leads stored, oldest first.
func (c *CRM) Leads() []crmclient.ListItem {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.leads)
}

// PerCompany counts the leads stored per company (a test lead's content
// is its own company).
func (c *CRM) PerCompany() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for _, l := range c.leads {
		m[l.Company]++
	}
	return m
}

// Top is the highest CRM id so far.
func (c *CRM) Top() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.FirstID + int64(len(c.leads))
}

// Env is an Env for client on a private redis-server of the test's own.
func Env(t testing.TB, client crm.Client) crm.Env {
	t.Helper()
	return crm.Env{Client: client, Store: rdb.New(redistest.Start(t).Client()), Timeout: time.Second, Clock: time.Now}
}

// Lead is a lead whose content is its own (company), received now.
func Lead(company string) lead.Payload {
	l := lead.Lead{Title: "Ann", Email: "ann@example.com", Company: company, Description: "call me"}
	return lead.NewPayload("shop", "key-"+company, l, time.Now())
}

// Others adds n leads of other content to c, unstamped.
func Others(t testing.TB, c *CRM, n int) {
	t.Helper()
	for i := range n {
		l := lead.Lead{Title: "x", Company: fmt.Sprintf("other-%d", i)}
		if _, err := c.Add(context.Background(), crmclient.Lead{Lead: l}); err != nil {
			t.Fatal(err)
		}
	}
}

// PreflightCase is one row of a version's preflight table: what the CRM's
// stat and info fail with (nil: they answer), and the configuration
// problem (zero: none) or error Preflight must give.
type PreflightCase struct {
	Name             string
	StatErr, InfoErr error
	Want             delivery.Code
	WantErr          bool
}

// RunPreflight runs each case as a parallel subtest of t: a fresh CRM of
// version v set up as the case says, and the Preflight of the API newAPI
// makes around it.
func RunPreflight(t *testing.T, v crmclient.APIVersion, newAPI func(crm.Env) crm.API, cases []PreflightCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			c := New(v)
			c.StatErr, c.InfoErr = tc.StatErr, tc.InfoErr
			problem, err := newAPI(crm.Env{Client: c}).Preflight(context.Background())
			if problem.Code != tc.Want || (err != nil) != tc.WantErr {
				t.Fatalf("Preflight = %+v, %v; want %q (error %v)", problem, err, tc.Want, tc.WantErr)
			}
		})
	}
}
