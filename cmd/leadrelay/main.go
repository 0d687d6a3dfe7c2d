// Command leadrelay relays web-site leads into the SalesMan CRM through
// durable Redis queues. Run `leadrelay help` for the subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"leadrelay/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, w := range config.Unknown(os.Environ()) {
		fmt.Fprintln(os.Stderr, "leadrelay: warning:", w)
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "leadrelay:", err)
		os.Exit(exitCode(err))
	}
}
