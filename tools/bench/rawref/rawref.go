// Package rawref is the bench's raw asynq reference worker: an asynq
// server whose handler parses a lead task and makes the same
// crmclient.Add as LeadRelay's worker, with none of its bookkeeping. The
// bench runs it in process (tools/bench) and as a process of its own
// (tools/bench/rawworker), whose resident memory is the reference of a
// worker process's.
package rawref

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	v2 "leadrelay/crm/v2"
	"leadrelay/crmclient"
	"leadrelay/lead"
)

// Credentials of the bench's simulated CRM.
const (
	CRMLogin  = "admin@example.com"
	CRMAPIKey = "BenchCRMKey0123456789abcdef"
)

// Handler parses a lead task and adds it to the CRM at crmURL (the
// bench's simulator, API v2), stamped as the worker's v2 stamps it.
func Handler(crmURL string) (asynq.HandlerFunc, error) {
	cl, err := crmclient.New(crmURL, CRMLogin, CRMAPIKey, crmclient.WithAPIVersion(crmclient.V2),
		crmclient.WithTimeout(30*time.Second), crmclient.WithUserAgent("LeadRelay/bench"))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, t *asynq.Task) error {
		p, err := lead.ParsePayload(t.Payload())
		if err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = cl.Add(cctx, v2.Lead(p))
		return err
	}, nil
}

// Start starts an asynq server of concurrency conc on the lead queue with
// handler h, polling every poll (0: asynq's default), on its own
// connection pool to Redis at addr; the function it returns stops it.
func Start(addr string, conc int, poll time.Duration, h asynq.Handler) (func(), error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: conc, Queues: map[string]int{lead.DefaultQueue: 1},
		Logger: zap.NewNop().Sugar(), LogLevel: asynq.ErrorLevel, ShutdownTimeout: 5 * time.Second,
		TaskCheckInterval: poll,
	})
	if err := srv.Start(h); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return func() { srv.Shutdown(); _ = rdb.Close() }, nil
}
