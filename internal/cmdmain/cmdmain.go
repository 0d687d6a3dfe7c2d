// Package cmdmain is the frame every LeadRelay command's main runs in: a
// context that ends at the first SIGINT or SIGTERM, and a failure turned
// into one line on stderr and a non-zero exit status. The wiring stays in
// each command's own run, so the relay links nothing of the tools by it.
//
//	func main() {
//		cmdmain.Run("rawworker: ", func(ctx context.Context) error {
//			return run(ctx, os.Args[1:])
//		}, nil)
//	}
package cmdmain

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Run calls run with a context that ends at the first SIGINT or SIGTERM.
// When run fails, Run prints prefix and the error on stderr and exits the
// process with exitCode(err), or 1 when exitCode is nil; when run
// succeeds, Run returns. A command whose errors name it passes an empty
// prefix.
func Run(prefix string, run func(context.Context) error, exitCode func(error) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		os.Exit(report(os.Stderr, prefix, err, exitCode))
	}
}

// report writes err's line to w and returns the exit status it maps to.
func report(w io.Writer, prefix string, err error, exitCode func(error) int) int {
	fmt.Fprintf(w, "%s%v\n", prefix, err)
	if exitCode == nil {
		return 1
	}
	return exitCode(err)
}
