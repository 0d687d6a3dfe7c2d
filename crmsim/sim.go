package crmsim

import (
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// API selections for Config.API.
const (
	APIv1   = "v1"   // serve only /developer/v1/leads
	APIv2   = "v2"   // serve only /developer/v2/lead
	APIBoth = "both" // serve both (the default)
)

// Paths of the two API versions, as the CRM serves them.
const (
	PathV1 = "/developer/v1/leads"
	PathV2 = "/developer/v2/lead"
)

// defaultPersistDelay bounds how stale DataFile may be after a change.
const defaultPersistDelay = 100 * time.Millisecond

// Config configures a Sim. The zero value (plus an APIKey) serves both API
// versions with the default users, in memory, with no faults.
type Config struct {
	// API selects the versions served: "v1", "v2" or "both" ("" = both).
	// The other version's path answers the 404 page.
	API string
	// APIKey is the account's API key. Required.
	APIKey string
	// Users are the CRM users; nil = DefaultUsers(). If none is marked
	// Coordinator, the first user is the coordinator.
	Users []User
	// Clock gives the current time for datum/datum_do and stat's "this
	// month"; nil = time.Now. Faults (outage ends) use the real clock.
	Clock func() time.Time
	// Location is the CRM's local time zone for datum; nil = time.Local.
	Location *time.Location
	// DataFile, when set, keeps the leads in that JSON file: loaded by New,
	// rewritten atomically (temp file + rename) after changes.
	DataFile string
	// PersistDelay debounces DataFile writes: 0 = 100ms, negative = write
	// synchronously after every change.
	PersistDelay time.Duration
	// Seed seeds the random source that draws faults. Equal seeds and equal
	// request sequences give equal faults.
	Seed int64
	// Faults are the faults active from the start.
	Faults Faults
	// Logger receives a Debug entry per request and warnings; nil = no logs.
	// The API key is never logged.
	Logger *zap.Logger
}

// User is a CRM user. Its iduser is its 1-based position in Config.Users.
type User struct {
	Login       string `json:"login"`       // login, usually an e-mail; matched case-insensitively like MySQL does
	Name        string `json:"name"`        // full name (v1 list "user", userName)
	Active      bool   `json:"active"`      // listed by stat; inactive users can still log in
	Coordinator bool   `json:"coordinator"` // gets leads nobody else matches
}

// DefaultUsers returns the users a Config with nil Users gets: the
// coordinator admin@example.com ("Admin") and two sales users, all active.
func DefaultUsers() []User {
	return []User{
		{Login: "admin@example.com", Name: "Admin", Active: true, Coordinator: true},
		{Login: "sales1@example.com", Name: "Sales One", Active: true},
		{Login: "sales2@example.com", Name: "Sales Two", Active: true},
	}
}

// Sim is the simulated CRM. It is an http.Handler and safe for concurrent
// use. Call Close to flush DataFile.
type Sim struct {
	api      string
	apiKey   string
	users    []User
	byLogin  map[string]int // lower-case login -> iduser
	coord    int            // iduser of the coordinator
	clock    func() time.Time
	loc      *time.Location
	log      *zap.Logger
	mux      *http.ServeMux
	persist  *persister
	pool     phpPool
	working  atomic.Int64 // requests in their Latency, for Faults.CPUs
	mu       sync.Mutex   // guards everything below
	st       store
	faults   Faults
	rng      *rand.Rand
	stats    statsCounters
	watchers []chan struct{}
}

// New validates cfg and returns a Sim, loading cfg.DataFile if it exists.
func New(cfg Config) (*Sim, error) {
	s := &Sim{
		api:     cfg.API,
		apiKey:  cfg.APIKey,
		clock:   cfg.Clock,
		loc:     cfg.Location,
		log:     cfg.Logger,
		byLogin: map[string]int{},
		rng:     rand.New(rand.NewSource(cfg.Seed)),
	}
	if s.api == "" {
		s.api = APIBoth
	}
	if s.api != APIv1 && s.api != APIv2 && s.api != APIBoth {
		return nil, fmt.Errorf("crmsim: API must be v1, v2 or both, got %q", cfg.API)
	}
	if s.apiKey == "" {
		return nil, errors.New("crmsim: APIKey is required")
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.users = append([]User(nil), cfg.Users...)
	if cfg.Users == nil {
		s.users = DefaultUsers()
	}
	if len(s.users) == 0 {
		return nil, errors.New("crmsim: Users must not be empty")
	}
	for i, u := range s.users {
		key := strings.ToLower(strings.TrimSpace(u.Login))
		if key == "" {
			return nil, fmt.Errorf("crmsim: user %d has an empty login", i+1)
		}
		if _, dup := s.byLogin[key]; dup {
			return nil, fmt.Errorf("crmsim: duplicate user login %q", u.Login)
		}
		s.byLogin[key] = i + 1
		if u.Coordinator && s.coord == 0 {
			s.coord = i + 1
		}
	}
	if s.coord == 0 {
		s.coord = 1
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("crmsim: %w", err)
	}
	s.faults = cfg.Faults.normalize(time.Now())
	s.pool.setLimit(s.faults.PHPWorkers)
	s.st.init()
	s.stats.init()
	if cfg.DataFile != "" {
		delay := cfg.PersistDelay
		if delay == 0 {
			delay = defaultPersistDelay
		}
		s.persist = &persister{path: cfg.DataFile, delay: delay, log: s.log}
		snap, err := loadSnapshot(cfg.DataFile)
		if err != nil {
			return nil, fmt.Errorf("crmsim: load %s: %w", cfg.DataFile, err)
		}
		if snap != nil {
			if err := s.st.restore(snap); err != nil {
				return nil, fmt.Errorf("crmsim: load %s: %w", cfg.DataFile, err)
			}
		}
	}
	s.routes()
	return s, nil
}

func (s *Sim) routes() {
	s.mux = http.NewServeMux()
	if s.api != APIv2 {
		s.mux.HandleFunc(PathV1, s.handleAPI(APIv1))
		s.mux.HandleFunc(PathV1+".php", s.handleAPI(APIv1))
	}
	if s.api != APIv1 {
		s.mux.HandleFunc(PathV2, s.handleAPI(APIv2))
		s.mux.HandleFunc(PathV2+".php", s.handleAPI(APIv2))
	}
	s.adminRoutes(s.mux)
	s.mux.HandleFunc("/", notFoundPage)
}

// notFoundPage mimics the web server's page for a path the CRM lacks.
func notFoundPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=iso-8859-1")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n</body></html>\n")
}

// ServeHTTP serves the API paths selected by Config.API and the admin
// endpoints under /_sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Users returns a copy of the configured users; a user's iduser is its index+1.
func (s *Sim) Users() []User { return append([]User(nil), s.users...) }

// Flush writes DataFile now if a write is pending. Without DataFile it does nothing.
func (s *Sim) Flush() error {
	if s.persist == nil {
		return nil
	}
	return s.persist.flush(s)
}

// Close flushes DataFile and stops the pending write timer. The Sim keeps
// serving; later changes are persisted again.
func (s *Sim) Close() error {
	if s.persist == nil {
		return nil
	}
	s.persist.stop()
	return s.persist.flush(s)
}

// changed is called with s.mu held after the leads changed.
func (s *Sim) changed() {
	if s.persist != nil {
		s.persist.mark(s)
	}
}

// now is the CRM's local time.
func (s *Sim) now() time.Time { return s.clock().In(s.loc) }

// userName returns the name of iduser, "" if unknown.
func (s *Sim) userName(id int) string {
	if id < 1 || id > len(s.users) {
		return ""
	}
	return s.users[id-1].Name
}

// userByLogin returns the iduser of login (case-insensitive), 0 if unknown.
func (s *Sim) userByLogin(login string) int {
	return s.byLogin[strings.ToLower(login)]
}

// redact removes the API key from a string that is about to be logged.
func (s *Sim) redact(v string) string {
	if s.apiKey == "" || !strings.Contains(v, s.apiKey) {
		return v
	}
	return strings.ReplaceAll(v, s.apiKey, "[REDACTED]")
}
