package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/redis/go-redis/v9"

	"leadrelay/config"
	"leadrelay/internal/cmdmain"
)

func main() {
	// The bench's errors name the bench or its section: no prefix.
	cmdmain.Run("", func(ctx context.Context) error {
		for _, w := range config.Unknown(os.Environ()) {
			fmt.Fprintln(os.Stderr, "bench: warning:", w)
		}
		// go-redis's own pool lines add nothing to the bench's progress; the
		// relay, where the bench used to run, drops them too.
		redis.SetLogger(quietRedis{})
		// Only the real CRM's address and credentials matter to the bench.
		cfg, _ := config.LoadLenient(os.Getenv)
		err := Main(ctx, os.Args[1:], RealCRM{URL: cfg.CRM.URL, Login: cfg.CRM.Login, APIKey: cfg.CRM.APIKey}, os.Stdout, os.Stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}, nil)
}

// quietRedis drops go-redis's log lines.
type quietRedis struct{}

// Printf drops one go-redis line.
func (quietRedis) Printf(context.Context, string, ...any) {}
