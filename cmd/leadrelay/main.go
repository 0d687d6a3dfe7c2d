// Command leadrelay relays web-site leads into the SalesMan CRM through
// durable Redis queues. Run `leadrelay help` for the subcommands.
package main

import (
	"context"
	"fmt"
	"os"

	"leadrelay/config"
	"leadrelay/internal/cmdmain"
)

func main() {
	cmdmain.Run("leadrelay: ", func(ctx context.Context) error {
		for _, w := range config.Unknown(os.Environ()) {
			fmt.Fprintln(os.Stderr, "leadrelay: warning:", w)
		}
		return run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	}, exitCode)
}
