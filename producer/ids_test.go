package producer

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"leadrelay/internal/rdb"
	"leadrelay/internal/redistest"
	"leadrelay/lead"
	"leadrelay/status"
)

// idKey is a fixed lead.IDKey of these tests.
func idKey(t *testing.T, b byte) lead.IDKey {
	t.Helper()
	k, err := lead.NewIDKey(bytes.Repeat([]byte{b}, lead.IDKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeylessIDsRevealNothing is issue 18's finding 2: a keyless lead's id
// was sha256 of its site and content (with the window: and the time of
// its first submission), so anyone who knew or guessed the content could
// compute it and read the lead's status, and could send a key of that
// form to block the lead. Now the id is keyed with the relay's id key:
// none of the ids computable from the content is the lead's, the status
// under them is "no such lead", the same content under another id key is
// another id, and keys of the relay's namespace are refused.
func TestKeylessIDsRevealNothing(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client()
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	p, _ := newPublisher(t, rdb, Options{Queue: "ids", Clock: clock, IDKey: idKey(t, 1)})
	ctx := t.Context()
	ann := lead.Lead{Title: "Ann", Phone: "+7 900 123-45-67"}
	rc, err := p.Publish(ctx, "shop", ann, "")
	if err != nil {
		t.Fatal(err)
	}
	n := ann
	n.Normalize()
	d := n.Digest()
	guesses := []string{
		lead.ID("shop", d.Key()), // the id before the keyless window
		lead.ID("shop", d.Key()+"@"+strconv.FormatInt(at.UnixMilli(), 10)), // with it
	}
	for _, g := range guesses {
		if g == rc.ID {
			t.Fatalf("the lead's id %s is computable from its content", rc.ID)
		}
		if _, err := p.Status(ctx, "shop", g); !errors.Is(err, status.ErrNotFound) {
			t.Errorf("status of the guessed id %s: %v, want not found", g, err)
		}
	}
	if _, err := p.Status(ctx, "shop", rc.ID); err != nil {
		t.Errorf("status of the lead's own id: %v", err)
	}

	other, _ := newPublisher(t, redistest.Start(t).Client(), Options{Queue: "ids", Clock: clock, IDKey: idKey(t, 2)})
	if rc2, err := other.Publish(ctx, "shop", ann, ""); err != nil || rc2.ID == rc.ID {
		t.Errorf("another id key names the same content %+v, %v; want another id", rc2, err)
	}
	twin, _ := newPublisher(t, rdb, Options{Queue: "ids", Clock: clock, IDKey: idKey(t, 1)})
	if again, err := twin.Publish(ctx, "shop", ann, ""); err != nil || again.ID != rc.ID || !again.Duplicate {
		t.Errorf("a second intake with the same id key: %+v, %v; want the same lead, a duplicate", again, err)
	}

	for _, key := range []string{d.Key(), "keyless:" + string(d), "sha256:anything"} {
		if _, err := p.Publish(ctx, "shop", lead.Lead{Title: "Junk", Phone: "+1 555 0100"}, key); !errors.Is(err, ErrReservedKey) || !NothingStored(err) {
			t.Errorf("key %q: %v, want ErrReservedKey with nothing stored", key, err)
		}
	}
}

// TestKeylessAcrossUpgrade: an intake of the version before keyed ids
// stored a keyless lead under its content's plain id; a new intake that
// gets the same content within the keyless window (the form sent twice
// during a rolling upgrade) must answer with that lead, whether its task
// is still queued or only the old version's delivered marker is left, so
// the CRM gets it once (a task enqueued again under the old id meets the
// old marker before any add: rdb.Store.Begin). Outside the window the same content is a new lead,
// as with keyed ids alone.
func TestKeylessAcrossUpgrade(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Minute
	now := time.Now()
	cases := []struct {
		name     string
		received time.Time
		task     bool // the old task is still in asynq; else only its marker
		same     bool
	}{
		{"queued by the old intake", now.Add(-time.Minute), true, true},
		{"delivered by the old version, task gone", now.Add(-time.Minute), false, true},
		{"queued before the window", now.Add(-2 * window), true, false},
		{"delivered before the window", now.Add(-2 * window), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rc := redistest.Start(t).Client()
			ctx := t.Context()
			ann := lead.Lead{Title: "Ann", Email: "ann@example.com", Description: "call me"}
			ann.Normalize()
			old := lead.NewPayload("shop", "", ann, c.received) // the old form: "sha256:" and the digest
			if c.task {
				enqueueTask(t, rc, "ids", old)
			} else {
				m, _ := json.Marshal(rdb.Marker{CRMID: 7, At: c.received, LeadID: old.ID, Site: "shop", Sum: old.Sum})
				if err := rc.Set(ctx, rdb.LegacyDeliveredKey(old.ID), m, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			p, _ := newPublisher(t, rc, Options{Queue: "ids", KeylessWindow: window, IDKey: idKey(t, 1)})
			got, err := p.Publish(ctx, "shop", ann, "")
			if err != nil {
				t.Fatal(err)
			}
			if same := got.ID == old.ID; same != c.same {
				t.Errorf("new intake: %+v; old id %s; want the old lead %v", got, old.ID, c.same)
			}
			// Under the old id, a queued task is the lead itself; a task
			// enqueued again meets the old marker at the worker's Begin.
			want := 2
			if c.same || !c.task {
				want = 1
			}
			if tasks := queueSize(t, rc, "ids"); tasks != want {
				t.Errorf("%d tasks in the queue, want %d", tasks, want)
			}
		})
	}
}

// TestSumKeyed (issue 18): the content digest a task keeps in clear is
// keyed with the relay's id key, so knowing (or guessing) a one-field
// lead does not give what Redis holds: neither its plain SHA-256 nor its
// first 64 bits, which a delivered marker keeps, nor the digest under
// another key. Before, the Sum was the plain SHA-256 of the lead.
func TestSumKeyed(t *testing.T) {
	t.Parallel()
	rc := redistest.Start(t).Client()
	k := idKey(t, 1)
	p, _ := newPublisher(t, rc, Options{Queue: "sum", IDKey: k})
	l := lead.Lead{Phone: "+7 900 123-45-67"}
	r, err := p.Publish(t.Context(), "shop", l, "order-1")
	if err != nil {
		t.Fatal(err)
	}
	info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo("sum", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	env, err := lead.ReadEnvelope(info.Payload)
	if err != nil {
		t.Fatal(err)
	}
	l.Normalize()
	plain := string(l.Digest())
	switch {
	case env.Sum == "":
		t.Fatal("the task keeps no digest")
	case env.Sum == plain || env.Sum[:16] == plain[:16] || len(env.Sum) >= 19 && env.Sum[3:19] == plain[:16]:
		t.Fatalf("the task's digest %q is the plain SHA-256 of the lead (%s): a guess can be tested against it", env.Sum, plain)
	case env.Sum != string(k.Digest(l)):
		t.Fatalf("the task's digest %q is not the lead's keyed digest", env.Sum)
	case env.Sum == string(idKey(t, 2).Digest(l)):
		t.Fatal("another key gives the same digest")
	}
}

// TestSumAcrossUpgrade: a lead stored by the previous version, whose task
// and delivered marker keep the plain v1 digest, is still told from other
// content by a producer that keys digests: a repeat is a duplicate (not
// enqueued again, never 422), another lead under the same key is
// ErrKeyReused. Both places that compare are covered: the delivered
// marker at admission, and the task asynq still holds.
func TestSumAcrossUpgrade(t *testing.T) {
	t.Parallel()
	ann, bob := lead.Lead{Title: "Ann", Phone: "+7 900 123-45-67"}, lead.Lead{Title: "Bob", Phone: "+7 900 123-45-68"}
	for _, where := range []string{"marker", "task"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			rc := redistest.Start(t).Client()
			old := lead.NewPayload("shop", "order-9", ann, time.Now()) // v1 Sum, as the previous version wrote
			if old.Sum == "" || lead.Digest(old.Sum).Version() != lead.DigestV1 {
				t.Fatalf("old payload's sum %q is not v1", old.Sum)
			}
			insp := asynq.NewInspectorFromRedisClient(rc)
			switch where {
			case "marker":
				if _, err := rdb.New(rc).Finish(ctx, rdb.FinishArgs{Queue: "up", Token: "t", TTL: time.Hour, ClaimTTL: time.Hour, Day: "2026-12-01",
					Marker: rdb.Marker{LeadID: old.ID, Site: "shop", Sum: old.Sum, CRMID: 4, At: time.Now()}}); err != nil {
					t.Fatal(err)
				}
			case "task":
				enqueueTask(t, rc, "up", old)
			}
			p, _ := newPublisher(t, rc, Options{Queue: "up", IDKey: idKey(t, 1)})
			r, err := p.Publish(ctx, "shop", ann, "order-9")
			if err != nil || !r.Duplicate || r.ID != old.ID {
				t.Fatalf("repeat across the upgrade = %+v, %v; want a duplicate of %s", r, err, old.ID)
			}
			if _, err := p.Publish(ctx, "shop", bob, "order-9"); !errors.Is(err, ErrKeyReused) {
				t.Fatalf("another lead under the key = %v, want ErrKeyReused", err)
			}
			if where == "marker" {
				if _, err := insp.GetTaskInfo("up", old.ID); !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
					t.Errorf("a repeat of a delivered lead was enqueued again: %v", err)
				}
			}
		})
	}
}
