package crmsim

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// Stats counts what the Sim did since New or Reset.
type Stats struct {
	// Requests counts API requests that reached parsing, by "v1.add",
	// "v2.list", ... ("v1." + action as sent; "v1." alone when missing).
	Requests map[string]int64 `json:"requests"`
	// Faults counts injected faults by kind: outage, latency, rate_limit,
	// error, fatal, auth_fail, v1_shipped, reject, ambiguous, stamp_kill,
	// late_commit, php_queue (a request waited for a PHP worker),
	// webhook_wait and webhook_stall (a webhook call waited, or gave up).
	Faults map[string]int64 `json:"faults"`
	// Leads is the number of stored leads.
	Leads int `json:"leads"`
	// MissingUIDs is the number of stored leads whose uids are not written
	// (StampGap in progress, or killed by StampKillRate).
	MissingUIDs int `json:"missing_uids"`
	// PHPBusy and PHPQueued are the PHP workers at work and the requests
	// waiting for one (Faults.PHPWorkers; webhook calls included).
	PHPBusy   int `json:"php_busy"`
	PHPQueued int `json:"php_queued"`
}

type statsCounters struct {
	requests map[string]int64
	faults   map[string]int64
}

func (c *statsCounters) init() {
	c.requests = map[string]int64{}
	c.faults = map[string]int64{}
}

func (s *Sim) countRequest(api, action string) {
	switch action {
	case "add", "info", "stat", "list":
	default:
		if len(action) > 32 { // don't let junk grow the map without bound
			action = "other"
		}
	}
	s.mu.Lock()
	s.stats.requests[api+"."+action]++
	s.mu.Unlock()
}

func (s *Sim) countFault(kind string) {
	s.mu.Lock()
	s.stats.faults[kind]++
	s.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	busy, queued := s.pool.counts()
	s.mu.Lock()
	defer s.mu.Unlock()
	missing := 0
	for i := range s.st.leads {
		if len(s.st.leads[i].MissingUIDs) > 0 {
			missing++
		}
	}
	return Stats{
		Requests:    maps.Clone(s.stats.requests),
		Faults:      maps.Clone(s.stats.faults),
		Leads:       len(s.st.leads),
		MissingUIDs: missing,
		PHPBusy:     busy,
		PHPQueued:   queued,
	}
}

// adminRoutes registers the admin endpoints. They need no key: bind the
// server to loopback.
//
//	GET  /_sim/leads                every stored lead (JSON array)
//	GET  /_sim/leads?missing_uids=1 only leads whose uids are not written
//	POST /_sim/reset                drop all leads, ids restart at 1
//	GET  /_sim/faults               active faults
//	POST /_sim/faults               replace the faults (JSON body)
//	POST /_sim/leads/{id}/status    {"status":2,"rezult":0}
//	GET  /_sim/stats                Stats
func (s *Sim) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/leads", func(w http.ResponseWriter, r *http.Request) {
		leads := s.Leads()
		if r.URL.Query().Get("missing_uids") == "1" {
			leads = slices.DeleteFunc(leads, func(l StoredLead) bool { return len(l.MissingUIDs) == 0 })
		}
		writeAdmin(w, http.StatusOK, leads)
	})
	mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		writeAdmin(w, http.StatusOK, map[string]string{"result": "ok"})
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if err := decodeAdmin(r, &f); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if err := f.Validate(); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		s.SetFaults(f)
		writeAdmin(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_sim/leads/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			adminError(w, http.StatusBadRequest, errors.New("id must be an integer"))
			return
		}
		var body struct {
			Status *int `json:"status"`
			Rezult int  `json:"rezult"`
		}
		if err := decodeAdmin(r, &body); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if body.Status == nil {
			adminError(w, http.StatusBadRequest, errors.New("status is required"))
			return
		}
		if err := s.SetStatus(id, *body.Status, body.Rezult); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, ErrNoLead) {
				code = http.StatusNotFound
			}
			adminError(w, code, err)
			return
		}
		l, _ := s.Lead(id)
		writeAdmin(w, http.StatusOK, l)
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, http.StatusOK, s.Stats())
	})
}

func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("bad JSON body: " + err.Error())
	}
	return nil
}

func writeAdmin(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func adminError(w http.ResponseWriter, code int, err error) {
	writeAdmin(w, code, map[string]string{"error": err.Error()})
}
