package app

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"leadrelay/intake"
	"leadrelay/internal/respstatus"
)

// OpsGuardOptions configure OpsGuard. The zero value refuses every request
// with 401: no credentials and not Open.
type OpsGuardOptions struct {
	// User and Password are the basic-auth credentials operators send.
	User, Password string
	// Open admits requests without credentials: the embedded demo, or an
	// operator's explicit LEADRELAY_OPS_NO_AUTH. Ignored when User is set.
	Open bool
	// Hosts are the host names (no port) the listener answers besides
	// localhost and IP literals; any other Host header gets 421.
	Hosts []string
	// TrustedProxies name the client behind a reverse proxy (see
	// intake.ClientAddr).
	TrustedProxies []netip.Prefix
	// FailedLogins is the failed logins a client (intake.ClientKey), or a
	// device that signed in before, may make in a burst before every
	// request it makes gets 429; they come back at one a FailedLoginRefill.
	// Zero means DefaultFailedLogins. See loginBudget.
	FailedLogins int
	// UserFailedLogins is the same burst per user name, for all clients
	// without a device token together. Zero means DefaultUserFailedLogins.
	UserFailedLogins int
	// FailedLoginRefill is how long one spent failed login takes to come
	// back; zero means DefaultFailedLoginRefill.
	FailedLoginRefill time.Duration
	// Now is the clock of the failed-login budget and of device tokens;
	// nil means time.Now.
	Now func() time.Time
}

// maxAuditBody bounds what the audit line reads of a request body to find
// the lead ids of a batch action.
const maxAuditBody = 1 << 20

// uiCSP keeps the UI out of frames and its scripts, styles, fonts and
// data on this origin: nothing loads from outside. asynqmon inlines two
// small scripts; its links to Google's fonts are cut (asynqUI). LeadRelay's
// page sets a stricter policy of its own (internal/opspage).
const uiCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
	"font-src 'self' data:; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"

// OpsGuard admits operators to the ops listener's routes (UI, /ops/*,
// /metrics), in this order: a Host the listener answers to (against DNS
// rebinding), no cross-origin browser request for anything but a read
// (http.CrossOriginProtection, against CSRF), the failed-login budget
// (loginBudget: per client, per user name, per device that signed in
// before), then basic auth compared in constant time. Every answer gets
// anti-framing headers; every action (any method but GET, HEAD, OPTIONS)
// gets one audit log line: who, from where, what, which leads, the status.
func OpsGuard(h http.Handler, o OpsGuardOptions, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	if o.FailedLogins <= 0 {
		o.FailedLogins = DefaultFailedLogins
	}
	if o.UserFailedLogins <= 0 {
		o.UserFailedLogins = DefaultUserFailedLogins
	}
	if o.FailedLoginRefill <= 0 {
		o.FailedLoginRefill = DefaultFailedLoginRefill
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &opsGuard{
		next:    h,
		o:       o,
		log:     log,
		hosts:   map[string]bool{"localhost": true},
		cop:     http.NewCrossOriginProtection(),
		fails:   newLoginBudget(o),
		devices: newDeviceTokens(o.Password, o.Now),
	}
	for _, host := range o.Hosts {
		g.hosts[strings.ToLower(strings.TrimSuffix(host, "."))] = true
	}
	g.wantUser, g.wantPass = sha256.Sum256([]byte(o.User)), sha256.Sum256([]byte(o.Password))
	return g
}

type opsGuard struct {
	next               http.Handler
	o                  OpsGuardOptions
	log                *zap.Logger
	hosts              map[string]bool
	cop                *http.CrossOriginProtection
	fails              *loginBudget
	devices            deviceTokens
	wantUser, wantPass [sha256.Size]byte
}

func (g *opsGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", uiCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if !g.hostAllowed(r.Host) {
		http.Error(w, "this ops listener does not answer to that Host; add the name to LEADRELAY_OPS_HOSTS", http.StatusMisdirectedRequest)
		return
	}
	if err := g.cop.Check(r); err != nil {
		g.audit(r, "(refused before authentication)", http.StatusForbidden, leadIDRE.FindAllString(r.URL.Path, -1))
		http.Error(w, "cross-origin request refused: take ops actions from the ops UI's own page, or without a browser", http.StatusForbidden)
		return
	}
	user, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	if isRead(r.Method) {
		g.next.ServeHTTP(w, r)
		return
	}
	ids := g.leadIDs(r)
	sw := &respstatus.Recorder{ResponseWriter: w}
	g.next.ServeHTTP(sw, r)
	g.audit(r, user, sw.Code(), ids)
}

// authenticate checks basic auth, or admits anyone when the guard is open.
// It answers 401 or 429 itself and returns false then. The failed-login
// budget (loginBudget) judges the request before the password is checked.
func (g *opsGuard) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	if g.o.User == "" && g.o.Open {
		return "(no credentials required)", true
	}
	client := intake.ClientAddr(r, g.o.TrustedProxies)
	u, p, ok := r.BasicAuth()
	j := judge{client: intake.ClientKey(client), user: u}
	if g.o.User != "" {
		j.device, _ = g.devices.check(r, u)
	}
	if wait, blocked := g.fails.blocked(j); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		http.Error(w, "too many failed logins; try again later", http.StatusTooManyRequests)
		g.log.Warn("ops login refused: failed-login budget spent", zap.String("client", client), zap.Bool("device_token", j.device != ""))
		return "", false
	}
	gotU, gotP := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
	userOK := subtle.ConstantTimeCompare(gotU[:], g.wantUser[:])
	passOK := subtle.ConstantTimeCompare(gotP[:], g.wantPass[:])
	if g.o.User == "" || !ok || userOK&passOK != 1 {
		if ok { // a browser's first request carries no credentials: not a guess
			g.fails.spend(j)
			g.log.Warn("ops login failed", zap.String("client", client), zap.Bool("device_token", j.device != ""))
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="leadrelay ops", charset="UTF-8"`)
		msg := "unauthorized"
		if g.o.User == "" {
			msg = "unauthorized: this ops listener has no credentials set; set LEADRELAY_UI_USER and LEADRELAY_UI_PASSWORD"
		}
		http.Error(w, msg, http.StatusUnauthorized)
		return "", false
	}
	if j.device == "" {
		g.devices.set(w, r, u)
	}
	return u, true
}

// hostAllowed reports whether the Host header names this listener: an IP
// literal, localhost or a configured name. A DNS-rebinding page reaches
// the listener under its own name, which is none of these.
func (g *opsGuard) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return g.hosts[host] || strings.HasSuffix(host, ".localhost")
}

func isRead(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

var leadIDRE = regexp.MustCompile(`ld_[0-9a-f]{24}`)

// leadIDs are the leads an action names: ids in its path, and the task_ids
// of an asynqmon batch body (which it puts back for the handler).
func (g *opsGuard) leadIDs(r *http.Request) []string {
	ids := leadIDRE.FindAllString(r.URL.Path, -1)
	if r.Body == nil || r.Body == http.NoBody {
		return ids
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAuditBody))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
	if err != nil {
		return ids
	}
	var batch struct {
		TaskIDs []string `json:"task_ids"`
	}
	if json.Unmarshal(b, &batch) == nil {
		for _, id := range batch.TaskIDs {
			if leadIDRE.MatchString(id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// audit writes the one line of an ops action.
func (g *opsGuard) audit(r *http.Request, user string, status int, ids []string) {
	scope := "named leads"
	if len(ids) == 0 {
		scope = "no lead named (a whole queue or state, or none)"
	}
	g.log.Info("ops action",
		zap.String("user", user), zap.String("client", intake.ClientAddr(r, g.o.TrustedProxies)),
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status),
		zap.Strings("lead_ids", ids), zap.String("scope", scope))
}
