// Command rawworker is the bench's raw asynq reference worker as a
// process of its own (tools/bench/rawref), for the workers section, which
// builds and starts it: a worker process's resident memory is compared
// with this one's. Usage: rawworker <redis host:port> <CRM URL> <concurrency>.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"leadrelay/internal/cmdmain"
	"leadrelay/tools/bench/rawref"
)

func main() {
	cmdmain.Run("rawworker: ", func(ctx context.Context) error {
		return run(ctx, os.Args[1:])
	}, nil)
}

// run serves until ctx ends.
func run(ctx context.Context, args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: rawworker <redis host:port> <CRM URL> <concurrency>, got %q", args)
	}
	conc, err := strconv.Atoi(args[2])
	if err != nil {
		return fmt.Errorf("concurrency: %w", err)
	}
	h, err := rawref.Handler(args[1])
	if err != nil {
		return err
	}
	stopServer, err := rawref.Start(args[0], conc, 0, h)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stopServer()
	return nil
}
