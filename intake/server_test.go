package intake

import (
	"net"
	"testing"
	"time"
)

// TestLimitListener is the low finding "no connection cap": with a cap of
// n, the listener holds n connections and accepts the next only when one
// of them closes.
func TestLimitListener(t *testing.T) {
	t.Parallel()
	t.Run("no cap", func(t *testing.T) {
		t.Parallel()
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		if ln := LimitListener(raw, 0); ln != raw {
			t.Fatalf("LimitListener(ln, 0) = %T, want ln itself", ln)
		}
	})
	for _, n := range []int{1, 3} {
		t.Run("cap "+string(rune('0'+n)), func(t *testing.T) {
			t.Parallel()
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := LimitListener(raw, n)
			t.Cleanup(func() { ln.Close() })
			accepted := make(chan net.Conn, n+1)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			for range n + 1 {
				c, err := net.Dial("tcp", raw.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
			}
			var held []net.Conn
			for range n {
				select {
				case c := <-accepted:
					held = append(held, c)
				case <-time.After(10 * time.Second):
					t.Fatalf("only %d of %d connections accepted", len(held), n)
				}
			}
			select { // a look, not a wait: it cannot fail spuriously
			case <-accepted:
				t.Fatalf("connection %d accepted past the cap of %d", n+1, n)
			default:
			}
			held[0].Close()
			select {
			case c := <-accepted:
				c.Close()
			case <-time.After(10 * time.Second):
				t.Fatal("the waiting connection was not accepted after one closed")
			}
			for _, c := range held[1:] {
				c.Close()
			}
		})
	}
}
