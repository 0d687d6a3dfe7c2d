package worker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/delivery"
	"leadrelay/lead"
)

// Worker is an asynq server that delivers lead tasks with a Handler. Run as
// many as you like against one Redis. Build it with New.
type Worker struct {
	srv *asynq.Server
	mux *asynq.ServeMux
	h   *Handler
	o   Options
	log *zap.Logger
}

// New builds a Worker serving o.Queue with h. rdb is shared, not closed.
func New(rdb redis.UniversalClient, h *Handler, o Options, log *zap.Logger) *Worker {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	w := &Worker{o: o, log: log, h: h, mux: asynq.NewServeMux()}
	w.mux.Handle(lead.TaskType, h)
	cfg := asynq.Config{
		Concurrency:              o.Concurrency,
		Queues:                   map[string]int{o.Queue: 1},
		RetryDelayFunc:           RetryDelay(o),
		IsFailure:                IsFailure,
		ShutdownTimeout:          o.ShutdownTimeout,
		Logger:                   asynqLogger{log.Named("asynq")},
		LogLevel:                 asynq.InfoLevel,
		ErrorHandler:             asynq.ErrorHandlerFunc(w.handleError),
		TaskCheckInterval:        o.PollInterval,
		DelayedTaskCheckInterval: o.DelayedPollInterval,
	}
	w.srv = asynq.NewServerFromRedisClient(rdb, cfg)
	return w
}

// Run processes tasks until ctx is done, then shuts down gracefully: it
// stops taking tasks and gives in-flight deliveries ShutdownTimeout to
// finish before handing them back to the queue. Before the first task it
// runs the handler's preflight (Handler.Start).
func (w *Worker) Run(ctx context.Context) error {
	w.h.Start(ctx)
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

// handleError logs every failed run with its outcome, at a level that
// fits: dead letters are errors, retries warnings, backpressure debug.
func (w *Worker) handleError(ctx context.Context, t *asynq.Task, err error) {
	f := judge(err)
	retried, _ := asynq.GetRetryCount(ctx)
	fields := []zap.Field{zap.Int("attempt", retried+1)}
	site := ""
	if p, perr := lead.ParsePayload(t.Payload()); perr == nil {
		site = p.Site
		fields = append(fields, zap.String("lead_id", p.ID), zap.String("site", p.Site))
	}
	fields = append(fields, logFields(f)...)
	fields = append(fields, zap.Error(err))
	observeFailure(w.o.Observer, site, f)
	switch {
	case f.out == delivery.Final:
		w.log.Error("lead is dead: kept in the dead-letter store", fields...)
	case f.reason.Code == delivery.LeaseExpired:
		// The worker's trouble, not the lead's: asynq runs it again
		// without spending an attempt.
		w.log.Warn("lead's run lost its lease (the worker was cut off or stalled); asynq runs it again", fields...)
	case f.out.Postpones():
		w.log.Debug("lead postponed", fields...)
	default:
		w.log.Warn("lead delivery failed; retrying", fields...)
	}
}

// asynqLogger routes asynq's own log lines through zap, at levels that
// match LeadRelay's meaning: asynq's "Retry exhausted" warning for every
// archived task repeats the dead-letter error handleError already logged,
// so it is debug.
type asynqLogger struct{ l *zap.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any) {
	msg := fmt.Sprint(args...)
	if strings.HasPrefix(msg, "Retry exhausted") {
		a.l.Debug(msg)
		return
	}
	a.l.Warn(msg)
}
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Fatal(fmt.Sprint(args...)) }

var _ asynq.Logger = asynqLogger{}
