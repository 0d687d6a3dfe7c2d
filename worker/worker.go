package worker

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/delivery"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// Worker delivers lead tasks with a Handler: an asynq server while it has
// work, a wake subscription and a look every PollInterval while it has
// none (idle.go). Run as many as you like against one Redis. Build it
// with New.
type Worker struct {
	rdb   redis.UniversalClient
	store *rdb.Store
	cfg   asynq.Config // of each busy spell's server
	mux   *asynq.ServeMux
	h     *Handler
	o     Options
	log   *zap.Logger

	act      activity
	wakeable atomic.Bool // the wake subscription stands: the worker may go idle
	// resubscribed: a subscription stood before (the next one wakes).
	resubscribed atomic.Bool
	fleet        fleetWatch
	// For tests: looks for work while idle, busy spells begun, and
	// shutdowns that waited for runs handed back (settleHandedBack).
	idleLooks, busySpells, settling atomic.Int64
}

// New builds a Worker serving o.Queue with h. rc is shared, not closed.
func New(rc redis.UniversalClient, h *Handler, o Options, log *zap.Logger) *Worker {
	if log == nil {
		log = zap.NewNop()
	}
	o = o.withDefaults()
	w := &Worker{rdb: rc, store: rdb.New(rc), o: o, log: log, h: h, mux: asynq.NewServeMux()}
	w.mux.Handle(lead.TaskType, w.tracked(h))
	w.cfg = asynq.Config{
		Concurrency:     o.Concurrency,
		Queues:          map[string]int{o.Queue: 1},
		RetryDelayFunc:  RetryDelay(o),
		IsFailure:       IsFailure,
		ShutdownTimeout: o.ShutdownTimeout,
		Logger:          asynqLogger{log.Named("asynq")},
		// asynq's info lines are a server's start and stop: one a busy
		// spell, which is not news.
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler:             asynq.ErrorHandlerFunc(w.handleError),
		TaskCheckInterval:        o.BusyPollInterval,
		DelayedTaskCheckInterval: o.DelayedPollInterval,
		JanitorInterval:          janitorEvery,
	}
	w.fleet.init(rc)
	return w
}

// Run processes tasks until ctx is done, then shuts down gracefully: it
// stops taking tasks and gives in-flight deliveries ShutdownTimeout to
// finish before handing them back to the queue, then waits (a few seconds
// at most) for those handed back to release their leads' locks, so the
// caller may close Redis once it returns. Before the first task it
// runs the handler's preflight (Handler.Start). It is busy and idle by
// turns (idle.go); it returns an error only when an asynq server cannot
// start.
func (w *Worker) Run(ctx context.Context) error {
	w.h.Start(ctx)
	wake, listening := w.listen(ctx)
	w.log.Info("worker started", zap.String("queue", w.o.Queue), zap.Int("concurrency", w.o.Concurrency),
		zap.Bool("wakeable", w.wakeable.Load()), zap.Duration("poll_interval", w.o.PollInterval))
	for ctx.Err() == nil {
		w.idle(ctx, wake)
		if ctx.Err() != nil {
			break
		}
		if err := w.busy(ctx, wake); err != nil {
			return err
		}
	}
	<-listening
	w.log.Info("worker stopped")
	return nil
}

// handleError logs every failed run with its outcome, at a level that
// fits: dead letters are errors, retries warnings, backpressure debug.
func (w *Worker) handleError(ctx context.Context, t *asynq.Task, err error) {
	f := judge(err)
	retried, _ := asynq.GetRetryCount(ctx)
	fields := []zap.Field{zap.Int("attempt", retried+1)}
	site := ""
	if p, perr := lead.ReadEnvelope(t.Payload()); perr == nil {
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
