package intake

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Defaults of ConnLimits.
const (
	// DefaultShortIdle is how long a keep-alive connection may idle while
	// its listener is near its cap (the server's own IdleTimeout otherwise).
	DefaultShortIdle = 5 * time.Second
	// nearCapShare is the share of ConnLimits.Max from which idle
	// connections get DefaultShortIdle.
	nearCapShare = 0.75
)

// ConnLimits configure GuardListener. The zero value caps nothing.
type ConnLimits struct {
	// Max caps the listener's open connections (LimitListener); from three
	// quarters of it on, an idle keep-alive connection is closed after
	// ShortIdle. 0 means no cap and no early close.
	Max int
	// PerClient caps the connections one client (ClientKey) holds. A client
	// at its cap that opens another gives up its oldest idle connection
	// for it, or, when all of its connections are busy, has the new one
	// closed. 0 means no cap.
	PerClient int
	// TrustedProxies are exempt from PerClient: a reverse proxy carries
	// many clients' requests on its connections.
	TrustedProxies []netip.Prefix
	// ShortIdle is the idle time allowed near the cap; zero means
	// DefaultShortIdle.
	ShortIdle time.Duration
	// ClientKey names the client of a connection from its remote address;
	// "" exempts it from PerClient. Nil means ClientKey of its IP: an IPv4
	// address, an IPv6 /64, as intake's rate limits count clients. Tests
	// set it, since all their connections come from one address.
	ClientKey func(net.Addr) string
}

// GuardListener returns ln capped as l says, for srv to serve: at most
// l.Max connections (LimitListener; more wait in the kernel's backlog),
// at most l.PerClient of one client, and idle connections closed after
// l.ShortIdle once the listener is near its cap, so that idle keep-alive
// connections, from one client or from many, cannot hold every slot while
// other clients wait. It sets srv.ConnState (calling the one set before)
// to see which connections idle; serve srv on the returned listener only.
func GuardListener(srv *http.Server, ln net.Listener, l ConnLimits) net.Listener {
	if l.ShortIdle <= 0 {
		l.ShortIdle = DefaultShortIdle
	}
	if l.ClientKey == nil {
		proxies := l.TrustedProxies
		l.ClientKey = func(a net.Addr) string {
			host, _, err := net.SplitHostPort(a.String())
			if err != nil || trusted(proxies, host) {
				return ""
			}
			return ClientKey(host)
		}
	}
	g := &connGuard{
		Listener: LimitListener(ln, l.Max),
		l:        l,
		near:     int(float64(l.Max) * nearCapShare),
		perKey:   map[string]int{},
		conns:    map[*guardedConn]struct{}{},
		untimed:  map[*guardedConn]struct{}{},
		prev:     srv.ConnState,
	}
	srv.ConnState = g.connState
	return g
}

// connGuard is GuardListener's listener. Every count and connection state
// is under mu.
type connGuard struct {
	net.Listener
	l    ConnLimits
	near int // open connections from which idle ones get ShortIdle; 0: never
	prev func(net.Conn, http.ConnState)

	mu     sync.Mutex
	open   int
	perKey map[string]int
	conns  map[*guardedConn]struct{}
	// untimed are idle connections without a ShortIdle timer (they went
	// idle while the listener was below near).
	untimed map[*guardedConn]struct{}
}

// guardedConn is a connection GuardListener handed out.
type guardedConn struct {
	net.Conn
	g    *connGuard
	key  string
	once sync.Once
	// Under g.mu:
	idle      bool
	idleSince time.Time
	epoch     uint64 // moves on with every state change: a stale timer does nothing
	timer     *time.Timer
}

// Accept returns the next connection within the caps.
func (g *connGuard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc, ok := g.admit(c); ok {
			return gc, nil
		}
		c.Close() // the client's connections are all busy: it waits for one
	}
}

// admit counts c in, making room for it within its client's cap by closing
// that client's oldest idle connection, or reports that there is none.
func (g *connGuard) admit(c net.Conn) (*guardedConn, bool) {
	key := g.l.ClientKey(c.RemoteAddr())
	g.mu.Lock()
	var victim *guardedConn
	if key != "" && g.l.PerClient > 0 && g.perKey[key] >= g.l.PerClient {
		if victim = g.oldestIdleLocked(key); victim == nil {
			g.mu.Unlock()
			return nil, false
		}
	}
	gc := &guardedConn{Conn: c, g: g, key: key}
	g.open++
	g.perKey[key]++
	g.conns[gc] = struct{}{}
	var expired []*guardedConn
	if g.nearLocked() {
		expired = g.timeIdleLocked()
	}
	g.mu.Unlock()
	if victim != nil {
		victim.Close()
	}
	for _, e := range expired {
		e.Close()
	}
	return gc, true
}

func (g *connGuard) nearLocked() bool { return g.near > 0 && g.open >= g.near }

// oldestIdleLocked is key's connection idle the longest, or nil.
func (g *connGuard) oldestIdleLocked(key string) *guardedConn {
	var oldest *guardedConn
	for c := range g.conns {
		if c.key == key && c.idle && (oldest == nil || c.idleSince.Before(oldest.idleSince)) {
			oldest = c
		}
	}
	return oldest
}

// timeIdleLocked gives every idle connection without a timer one for the
// rest of its ShortIdle, and returns those already past it.
func (g *connGuard) timeIdleLocked() []*guardedConn {
	var expired []*guardedConn
	now := time.Now()
	for c := range g.untimed {
		delete(g.untimed, c)
		if left := g.l.ShortIdle - now.Sub(c.idleSince); left > 0 {
			g.timeLocked(c, left)
		} else {
			expired = append(expired, c)
		}
	}
	return expired
}

// timeLocked closes c after d unless it leaves the idle state first, or
// the listener is no longer near its cap then (it waits for the next
// crossing, untimed).
func (g *connGuard) timeLocked(c *guardedConn, d time.Duration) {
	epoch := c.epoch
	c.timer = time.AfterFunc(d, func() {
		g.mu.Lock()
		if c.epoch != epoch || !c.idle {
			g.mu.Unlock()
			return
		}
		c.timer = nil
		if !g.nearLocked() {
			g.untimed[c] = struct{}{}
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		c.Close()
	})
}

// connState follows the server's view of each connection: idle between
// requests, active while one is read or answered.
func (g *connGuard) connState(nc net.Conn, st http.ConnState) {
	if g.prev != nil {
		g.prev(nc, st)
	}
	c, ok := nc.(*guardedConn)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c.epoch++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	delete(g.untimed, c)
	c.idle = st == http.StateIdle
	if !c.idle {
		return
	}
	c.idleSince = time.Now()
	if g.nearLocked() {
		g.timeLocked(c, g.l.ShortIdle)
	} else {
		g.untimed[c] = struct{}{}
	}
}

// idleOf counts key's idle connections.
func (g *connGuard) idleOf(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for c := range g.conns {
		if c.key == key && c.idle {
			n++
		}
	}
	return n
}

// Close closes the connection and gives its place back, once.
func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		g := c.g
		g.mu.Lock()
		defer g.mu.Unlock()
		if c.timer != nil {
			c.timer.Stop()
		}
		c.idle = false
		c.epoch++
		delete(g.conns, c)
		delete(g.untimed, c)
		g.open--
		if g.perKey[c.key]--; g.perKey[c.key] <= 0 {
			delete(g.perKey, c.key)
		}
	})
	return err
}
