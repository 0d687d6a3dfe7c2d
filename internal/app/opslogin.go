package app

import (
	"container/heap"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// The ops listener's failed-login budget. Wrong passwords are counted in
// GCRA buckets, in memory (an ops listener has few clients, and each
// process guarding its own is enough to make guessing slow):
//
//   - per client (intake.ClientKey: an IPv4 address, an IPv6 /64), so one
//     host cannot guess faster by spreading over its addresses;
//   - per user name, with a larger burst, so many hosts together cannot
//     either;
//   - per device: a browser (or a curl cookie jar) that signed in before
//     holds a device token, and its requests are judged by that token's
//     own bucket instead of the two above.
//
// A bucket that is empty refuses every request it judges, the right
// password included, with 429 and without checking it: otherwise a guesser
// that ignores the 429s would still learn the moment it is right. The
// refusal lasts until the bucket has room again, one refill after the last
// counted guess; refused requests count nothing. The device token is what
// keeps operators in while someone guesses: behind one proxy address, or
// against the one user name from many hosts, a guesser empties the client
// and user buckets, never the bucket of a device that signed in before.
// Only a client with neither a token nor budget waits.

// Defaults of the failed-login budget.
const (
	// DefaultFailedLogins is the burst of wrong passwords per client and
	// per device.
	DefaultFailedLogins = 10
	// DefaultUserFailedLogins is the burst of wrong passwords per user name,
	// from all clients without a device token together.
	DefaultUserFailedLogins = 50
	// DefaultFailedLoginRefill is how long one spent wrong password takes
	// to come back: ten a minute.
	DefaultFailedLoginRefill = 6 * time.Second
)

// maxBudgetEntries bounds each table of the login budget.
const maxBudgetEntries = 10000

// deviceCookie carries the device token; deviceTokenTTL is its lifetime.
const (
	deviceCookie   = "leadrelay_ops_device"
	deviceTokenTTL = 30 * 24 * time.Hour
)

// loginBudget holds the three tables of failed logins.
type loginBudget struct {
	mu                      sync.Mutex
	now                     func() time.Time
	clients, users, devices *failTable
}

func newLoginBudget(o OpsGuardOptions) *loginBudget {
	return &loginBudget{
		now:     o.Now,
		clients: newFailTable(o.FailedLogins, o.FailedLoginRefill, maxBudgetEntries),
		users:   newFailTable(o.UserFailedLogins, o.FailedLoginRefill, maxBudgetEntries),
		devices: newFailTable(o.FailedLogins, o.FailedLoginRefill, maxBudgetEntries),
	}
}

// judge names the buckets that judge one request: the device's alone when
// it holds a valid token, else the client's and the user name's.
type judge struct {
	device       string // the token's id; "" without a valid token
	client, user string
}

func (b *loginBudget) buckets(j judge) []bucket {
	if j.device != "" {
		return []bucket{{b.devices, j.device}}
	}
	return []bucket{{b.clients, j.client}, {b.users, j.user}}
}

type bucket struct {
	t   *failTable
	key string
}

// blocked reports whether a bucket of j is empty, and for how long.
func (b *loginBudget) blocked(j judge) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var longest time.Duration
	for _, k := range b.buckets(j) {
		longest = max(longest, k.t.wait(k.key, now))
	}
	return longest, longest > 0
}

// spend counts one wrong password in every bucket of j.
func (b *loginBudget) spend(j judge) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for _, k := range b.buckets(j) {
		k.t.spend(k.key, now)
	}
}

// failTable is a bounded table of GCRA buckets. When full it evicts the
// entry whose bucket is fullest again soonest (the earliest tat): the one
// that would be forgotten first anyway, never the whole table, so pushing
// a blocked entry out takes as many entries blocked for longer.
type failTable struct {
	burst   int
	refill  time.Duration
	max     int
	entries map[string]*failEntry
	order   failHeap
}

type failEntry struct {
	key   string
	tat   time.Time // when the bucket is full again
	index int
}

func newFailTable(burst int, refill time.Duration, max int) *failTable {
	return &failTable{burst: burst, refill: refill, max: max, entries: map[string]*failEntry{}}
}

// wait is how long key's bucket stays empty; 0 when it has room.
func (t *failTable) wait(key string, now time.Time) time.Duration {
	e, ok := t.entries[key]
	if !ok {
		return 0
	}
	// The bucket is empty when refilling it takes the whole burst.
	return max(e.tat.Sub(now)-time.Duration(t.burst-1)*t.refill, 0)
}

// spend takes one from key's bucket.
func (t *failTable) spend(key string, now time.Time) {
	if e, ok := t.entries[key]; ok {
		e.tat = later(e.tat, now).Add(t.refill)
		heap.Fix(&t.order, e.index)
		return
	}
	for len(t.order) > 0 && (len(t.order) >= t.max || !t.order[0].tat.After(now)) {
		delete(t.entries, heap.Pop(&t.order).(*failEntry).key)
	}
	e := &failEntry{key: key, tat: now.Add(t.refill)}
	t.entries[key] = e
	heap.Push(&t.order, e)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// failHeap orders entries by tat, earliest first.
type failHeap []*failEntry

func (h failHeap) Len() int           { return len(h) }
func (h failHeap) Less(i, j int) bool { return h[i].tat.Before(h[j].tat) }
func (h failHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *failHeap) Push(x any) {
	e := x.(*failEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *failHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// deviceTokens issue and check device tokens: issued-at, a random id and
// an HMAC over them and the user name, keyed with a key derived from the
// ops password. Every process with the same credentials accepts the
// others' tokens, and changing the password revokes them all. A token
// admits nobody by itself: it only chooses the bucket that judges the
// password sent with it.
type deviceTokens struct {
	key []byte
	now func() time.Time
}

const deviceTokenLen = 8 + 16 + sha256.Size

func newDeviceTokens(password string, now func() time.Time) deviceTokens {
	m := hmac.New(sha256.New, []byte(password))
	m.Write([]byte("leadrelay ops device token key"))
	return deviceTokens{key: m.Sum(nil), now: now}
}

func (d deviceTokens) mac(user string, head []byte) []byte {
	m := hmac.New(sha256.New, d.key)
	m.Write(head)
	m.Write([]byte(user))
	return m.Sum(nil)
}

// issue returns a new token for user.
func (d deviceTokens) issue(user string) string {
	b := make([]byte, 8+16, deviceTokenLen)
	binary.BigEndian.PutUint64(b, uint64(d.now().Unix()))
	_, _ = rand.Read(b[8:])
	return base64.RawURLEncoding.EncodeToString(append(b, d.mac(user, b)...))
}

// check returns the id of r's device token when it is valid for user.
func (d deviceTokens) check(r *http.Request, user string) (string, bool) {
	c, err := r.Cookie(deviceCookie)
	if err != nil {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) != deviceTokenLen || !hmac.Equal(b[24:], d.mac(user, b[:24])) {
		return "", false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b)), 0)
	if age := d.now().Sub(issued); age < -time.Minute || age > deviceTokenTTL {
		return "", false
	}
	return hex.EncodeToString(b[8:24]), true
}

// set gives w a new token for user.
func (d deviceTokens) set(w http.ResponseWriter, r *http.Request, user string) {
	http.SetCookie(w, &http.Cookie{
		Name: deviceCookie, Value: d.issue(user), Path: "/", MaxAge: int(deviceTokenTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}
