package crmsim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Server serves a Sim on a TCP address. Unlike a plain http.Server it
// honours the "refuse" outage: it closes its listener and open connections
// so dials are refused, and listens again on the same address when the
// outage ends. The zero value is not usable; call NewServer.
type Server struct {
	sim *Sim
	log *zap.Logger
	srv *http.Server

	mu     sync.Mutex
	addr   string // resolved host:port, fixed after Start
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// NewServer returns a Server for sim; it logs through sim's logger.
func NewServer(sim *Sim) *Server {
	s := &Server{sim: sim, log: sim.log, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           sim,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(sim.log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		ConnState:         s.connState,
	}
	return s
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateHijacked, http.StateClosed:
		delete(s.conns, c)
	}
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until ctx is done or Close is called. It returns once the
// address is bound.
func (s *Server) Start(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.addr != "" || s.closed {
		s.mu.Unlock()
		ln.Close()
		return errors.New("crmsim: Server already started")
	}
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	s.serve(ln)
	watch := s.sim.watchFaults()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.sim.unwatchFaults(watch)
		s.supervise(ctx, watch)
	}()
	return nil
}

func (s *Server) serve(ln net.Listener) {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.srv.Serve(ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("crmsim: serve", zap.Error(err))
		}
	}()
}

// supervise opens and closes the listener as refuse outages come and go.
func (s *Server) supervise(ctx context.Context, watch chan struct{}) {
	for {
		var wake <-chan time.Time
		mode, down := s.sim.Faults().OutageActive(time.Now())
		refusing := down && mode == OutageRefuse
		if refusing {
			s.refuse()
			if o := s.sim.Faults().Outage; o != nil && !o.Until.IsZero() {
				wake = time.After(time.Until(o.Until))
			}
		} else if !s.reopen() {
			wake = time.After(50 * time.Millisecond) // port busy: try again
		}
		select {
		case <-ctx.Done():
			s.Close()
			return
		case <-s.done:
			return
		case <-watch:
		case <-wake:
		}
	}
}

// refuse closes the listener and every connection.
func (s *Server) refuse() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return
	}
	s.ln.Close()
	s.ln = nil
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
	s.log.Info("crmsim: outage: refusing connections", zap.String("addr", s.addr))
}

// reopen listens again on the same address; false if it could not yet.
func (s *Server) reopen() bool {
	s.mu.Lock()
	if s.ln != nil || s.closed {
		s.mu.Unlock()
		return true
	}
	addr := s.addr
	s.mu.Unlock()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.log.Warn("crmsim: outage over, cannot listen yet", zap.String("addr", addr), zap.Error(err))
		return false
	}
	s.serve(ln)
	s.log.Info("crmsim: outage over: listening again", zap.String("addr", addr))
	return true
}

// Addr is the bound host:port ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is "http://" + Addr().
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops serving: it waits up to 5s for requests in flight, then
// drops them. It does not close the Sim. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	return err
}

// Wait blocks until the serving goroutines have ended (after Close or the
// end of Start's context).
func (s *Server) Wait() { s.wg.Wait() }
