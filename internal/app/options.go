package app

import (
	"time"

	"github.com/redis/go-redis/v9"

	"leadrelay/config"
	"leadrelay/intake"
	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/worker"
)

// This file maps config's sections to the Options of the packages they
// configure; those packages never read config themselves.

// WorkerOptions are the worker's settings from the loaded configuration:
// its Worker section, the queue, the CRM's timeout and the Redis waits.
// The caller sets Limiter, DeadLetters, Observer and Codec.
func WorkerOptions(cfg config.Config) worker.Options {
	w := cfg.Worker
	return worker.Options{
		Queue:            cfg.Queue.Name,
		MaxRetry:         cfg.Queue.MaxRetry,
		Concurrency:      w.Concurrency,
		PollInterval:     w.PollInterval,
		RetryInitial:     w.RetryInitial,
		RetryMultiplier:  w.RetryMultiplier,
		RetryMaxDelay:    w.RetryMaxDelay,
		DeliveredTTL:     w.DeliveredTTL,
		ShutdownTimeout:  cfg.Server.ShutdownTimeout,
		BreakerThreshold: w.BreakerThreshold,
		BreakerCooldown:  w.BreakerCooldown,
		CRMTimeout:       cfg.CRM.Timeout,
		ReconcileUnknown: w.ReconcileUnknown,
		ReconcileAfter:   w.ReconcileAfter,
		WaitReplicas:     cfg.Redis.WaitReplicas,
		WaitTimeout:      cfg.Redis.WaitTimeout,
		Clock:            time.Now,
	}
}

// CRMLimiter is the fleet-wide CRM limiter of the CRM section: its rate,
// its concurrency cap (adaptive or not), and slots leased for a request's
// timeout plus a margin, so the slot of a killed worker frees itself.
func CRMLimiter(rc redis.UniversalClient, cfg config.Config, opts ...worker.LimiterOption) worker.Limiter {
	opts = append([]worker.LimiterOption{worker.WithAdaptiveConcurrency(cfg.CRM.Adaptive)}, opts...)
	return worker.NewRedisLimiter(rc, cfg.CRM.RateLimit, cfg.CRM.MaxConcurrent, cfg.CRM.Timeout+5*time.Second, opts...)
}

// intakeSites are the configured sites as intake serves them.
func intakeSites(sites config.Sites) map[string]intake.Site {
	out := make(map[string]intake.Site, len(sites))
	for name, s := range sites {
		rate := s.RateLimit
		out[name] = intake.Site{Keys: s.Keys, PublishableKeys: s.PublishableKeys, Origins: s.Origins, Secret: s.Secret, RateLimit: &rate,
			Settings: intake.SiteSettings{Charset: s.Charset, Fields: s.Fields, Attribution: s.Attribution}}
	}
	return out
}

// producerOptions are the publisher's settings: the queue, the Redis waits,
// intake's backlog caps, the codec that seals each lead and the key that
// names keyless ones.
func producerOptions(cfg config.Config, codec lead.Codec, ids lead.IDKey) producer.Options {
	return producer.Options{
		Queue:         cfg.Queue.Name,
		MaxRetry:      cfg.Queue.MaxRetry,
		DedupTTL:      cfg.Queue.DedupTTL,
		KeylessWindow: cfg.Queue.KeylessWindow,
		WaitReplicas:  cfg.Redis.WaitReplicas,
		WaitTimeout:   cfg.Redis.WaitTimeout,
		SiteMax:       cfg.Intake.SiteMaxQueued,
		TotalMax:      cfg.Intake.MaxQueued,
		Codec:         codec,
		IDKey:         ids,
	}
}
