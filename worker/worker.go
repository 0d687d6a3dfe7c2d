package worker

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/lead"
)

// A zap SugaredLogger has the methods of asynq.Logger.
var _ asynq.Logger = (*zap.SugaredLogger)(nil)

// Worker is an asynq server that delivers lead tasks with a Handler. Run as
// many as you like against one Redis. Build it with New.
type Worker struct {
	srv *asynq.Server
	mux *asynq.ServeMux
	o   Options
	log *zap.Logger
}

// New builds a Worker serving o.Queue with h. rdb is shared, not closed.
func New(rdb redis.UniversalClient, h *Handler, o Options, log *zap.Logger) *Worker {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	w := &Worker{o: o, log: log, mux: asynq.NewServeMux()}
	w.mux.Handle(lead.TaskType, h)
	cfg := asynq.Config{
		Concurrency:     o.Concurrency,
		Queues:          map[string]int{o.Queue: 1},
		RetryDelayFunc:  RetryDelay(o),
		IsFailure:       IsFailure,
		ShutdownTimeout: o.ShutdownTimeout,
		Logger:          log.Named("asynq").Sugar(),
		LogLevel:        asynq.WarnLevel,
		ErrorHandler:    asynq.ErrorHandlerFunc(w.handleError),
	}
	if o.PollInterval > 0 {
		cfg.TaskCheckInterval = o.PollInterval
		cfg.DelayedTaskCheckInterval = o.PollInterval
	}
	w.srv = asynq.NewServerFromRedisClient(rdb, cfg)
	return w
}

// Run processes tasks until ctx is done, then shuts down gracefully: it
// stops taking tasks and gives in-flight deliveries ShutdownTimeout to
// finish before handing them back to the queue.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.srv.Start(w.mux); err != nil {
		return err
	}
	w.log.Info("worker started", zap.String("queue", w.o.Queue), zap.Int("concurrency", w.o.Concurrency))
	<-ctx.Done()
	start := time.Now()
	w.srv.Shutdown()
	w.log.Info("worker stopped", zap.Duration("shutdown", time.Since(start)))
	return nil
}

// handleError logs every failed delivery with its class, at a level that
// fits: dead letters are errors, backpressure is debug noise.
func (w *Worker) handleError(ctx context.Context, t *asynq.Task, err error) {
	out := classify(err)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	fields := []zap.Field{zap.Int("attempt", retried+1), zap.Int("max_retry", maxRetry), zap.String("class", out.String())}
	if p, perr := lead.ParsePayload(t.Payload()); perr == nil {
		fields = append(fields, zap.String("lead_id", p.ID), zap.String("site", p.Site))
	}
	fields = append(fields, crmFields(err)...)
	fields = append(fields, zap.Error(err))
	observeFailure(w.o.Observer, err, retried, maxRetry)
	var de *DelayError
	switch {
	case out == OutcomeDead || IsFailure(err) && retried >= maxRetry:
		w.log.Error("lead task failed for good: archived as a dead letter", fields...)
	case errors.As(err, &de):
		w.log.Debug("lead task postponed", fields...)
	default:
		w.log.Warn("lead task failed; retrying", fields...)
	}
}
