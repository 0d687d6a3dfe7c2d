package crm

import (
	"context"
	"time"

	"go.uber.org/zap"

	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// API is one version of SalesMan's leads API as a delivery run needs it.
// Package versions builds the one a client speaks; the worker asks it and
// never the version's name.
type API interface {
	// Version names the API version, for logs.
	Version() crmclient.APIVersion
	// Caps says what a delivery run must do for this version.
	Caps() Caps

	// Add sends the lead, with whatever stamp the version can carry. It
	// is not idempotent: an add that got no clear answer is looked up.
	Add(ctx context.Context, p lead.Payload) (int64, error)
	// LookUp finds out whether an earlier, uncertain add (its attempt
	// record a) stored the lead. A CRM lead matched by content is claimed
	// for this lead (ClaimRetention), so two genuine identical leads never
	// map to one CRM lead. An error means the look-up could not finish.
	LookUp(ctx context.Context, p lead.Payload, a rdb.Attempt) (Result, error)
	// Preflight checks the CRM's configuration as this version needs it:
	// the problem found (deliveries must pause until an operator fixes
	// it), no reason when it works, or an error when the CRM could not be
	// reached.
	Preflight(ctx context.Context) (delivery.Reason, error)

	// Watermark is the highest CRM id this process knows the version's
	// look-up covers; a send records it (rdb.BeginArgs.Watermark), and a
	// look-up of that send starts above it.
	Watermark() int64
	// Saw takes in what rdb.Store.Begin read for this version (the
	// fields Caps asked for); catchUp says a send must wait until CatchUp
	// has run.
	Saw(b rdb.Begun) (catchUp bool)
	// CatchUp brings the look-up's bookkeeping up to date now, for a send
	// that Saw held back; a process's concurrent callers share one.
	CatchUp(ctx context.Context) error
	// Resume reads what the fleet recorded of the look-up's bookkeeping,
	// so even a fresh process's first send carries a watermark. Call it
	// once at start.
	Resume(ctx context.Context) error
	// Refresh does the look-up's periodic bookkeeping; call it at start
	// and every few minutes.
	Refresh(ctx context.Context) error

	// ReadBack reads the CRM's leads with an id above floor for the
	// audit (package audit): bounded, paged reads.
	ReadBack(ctx context.Context, floor int64) (ReadBack, error)
	// SentHash is the content hash of p as this version sends it, which
	// ReadBack's Seen.Hash of the CRM lead it made equals.
	SentHash(p lead.Payload) string
}

// Caps are what a version needs of every delivery run. The zero value
// asks for nothing.
type Caps struct {
	// CountSends: every send is counted for the version's journal of the
	// CRM's newest leads (rdb.BeginArgs.CountSend), whose counters Begin
	// reads back for Saw.
	CountSends bool
	// DeliveredTop: the watermark is the highest CRM id any delivery
	// recorded (rdb.BeginArgs.ReadTop), which Begin reads back for Saw.
	DeliveredTop bool
	// CheckErrorPages: an add answered with an error page may mean this
	// version is broken on the CRM, not a passing fault; a preflight
	// tells, before the lead is looked up.
	CheckErrorPages bool
}

// Finding is what a look-up found.
type Finding int

// The findings of a look-up.
const (
	// NotFound: the CRM certainly lacks the lead; send it.
	NotFound Finding = iota
	// Found: the CRM has it (Result.CRMID); record it as delivered.
	Found
	// CannotTell: the look-up cannot tell; the worker's policy decides.
	CannotTell
)

// String returns "found", "not_found" or "unknown", as logs write it.
func (f Finding) String() string {
	switch f {
	case Found:
		return "found"
	case NotFound:
		return "not_found"
	}
	return "unknown"
}

// Result is the answer of a look-up.
type Result struct {
	// Finding is what it found.
	Finding Finding
	// CRMID is the CRM's id of the lead, with Found.
	CRMID int64
	// Journal: the answer came from a journal of the CRM's newest leads,
	// not from list pages.
	Journal bool
}

// Client is the CRM a version calls: *crmclient.Client, or the worker's
// wrapper of it, which also bounds every call by the CRM timeout, admits
// every List through LeadRelay's limiter and tries a transient List
// failure again.
type Client interface {
	// Add creates a lead; it is not idempotent.
	Add(ctx context.Context, l crmclient.Lead) (int64, error)
	// List returns one page of leads, newest first by default.
	List(ctx context.Context, o crmclient.ListOptions) ([]crmclient.ListItem, error)
	// Stat returns the CRM's per-user counts; a preflight uses it to
	// check URL, login and key.
	Stat(ctx context.Context) ([]crmclient.UserStat, error)
	// Info returns one lead.
	Info(ctx context.Context, id int64) (crmclient.LeadInfo, error)
	// Sent returns a lead as the client sends it (after its sanitizing:
	// emoji stand-ins, v2's ip line), which is what the CRM then lists.
	Sent(l crmclient.Lead) crmclient.Lead
	// Version is the API version the client speaks.
	Version() crmclient.APIVersion
}

var _ Client = (*crmclient.Client)(nil)

// Env is what a version works with. Every field must be set but Log.
type Env struct {
	// Client is the CRM.
	Client Client
	// Store keeps the claims of CRM ids and the version's bookkeeping.
	Store *rdb.Store
	// Timeout bounds one CRM call; background bookkeeping takes twice it.
	Timeout time.Duration
	// Clock returns the current time.
	Clock func() time.Time
	// Log is told what a look-up meets on its way; nil logs nothing.
	Log *zap.Logger
}

// ClaimRetention is how long a CRM id stays claimed by its lead. A look-up
// looks back to a lead's first attempt, which lies within the retry budget
// (about 3 days by default).
const ClaimRetention = 7 * 24 * time.Hour

// StoreError is a failure of LeadRelay's own Redis bookkeeping: a
// version's (claims, a journal) or the worker's (a delivery's state, the
// circuit, the limiter). It is never the lead's fault (delivery.Store).
type StoreError struct {
	// Op says what was being done.
	Op string
	// Err is the store's error.
	Err error
}

// Error reports the operation and the cause.
func (e *StoreError) Error() string { return "redis: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// StoreErr wraps a store failure of op; nil stays nil.
func StoreErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &StoreError{Op: op, Err: err}
}
