// Command crmsim serves the SalesMan CRM simulator (package crmsim) on its
// own: for compose's "sim" profile, the chaos suite and trials by hand. It
// is not part of the relay binary; the relay's `serve` still embeds the
// same simulator when no CRM is configured. From the module root:
//
//	go run ./tools/crmsim --addr 127.0.0.1:9090 --api v1 --login admin@example.com --apikey KEY
//	go run ./tools/crmsim -h
package main

import (
	"context"
	"os"

	"leadrelay/crmsim"
	"leadrelay/internal/cmdmain"
)

func main() {
	// crmsim.Run's errors name crmsim: no prefix.
	cmdmain.Run("", func(ctx context.Context) error {
		return crmsim.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}, nil)
}
