package intake

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Server limits set by NewHTTPServer.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 16 << 10
)

// NewHTTPServer returns a server for h on addr with timeouts and a header
// limit, so a client that sends slowly (slowloris) or idles cannot hold a
// connection. Callers start it and shut it down.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// LimitListener returns ln accepting at most n connections at a time: the
// next waits in the kernel's backlog until one closes, so a flood of
// connections cannot exhaust the process's file descriptors or memory.
// It is x/net's netutil.LimitListener, except that n <= 0 returns ln
// unchanged (netutil's would accept nothing).
func LimitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, n)
}
