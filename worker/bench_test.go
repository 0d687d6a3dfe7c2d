package worker

import (
	"testing"

	"github.com/hibiken/asynq"

	"leadrelay/crmclient"
)

// BenchmarkProcessTask measures the delivery hot path on a real Redis with
// an instant CRM: begin (marker + lock), breaker, write-ahead, add, finish.
func BenchmarkProcessTask(b *testing.B) {
	ctx := b.Context()
	for _, v := range []crmclient.APIVersion{crmclient.V1, crmclient.V2} {
		b.Run(string(v), func(b *testing.B) {
			e := newEnv(b, v, nil)
			tasks := make([]*asynq.Task, b.N)
			for i := range tasks {
				tasks[i], _ = newLeadTask(b)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := e.h.ProcessTask(ctx, tasks[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProcessTaskDuplicate measures a re-run of a delivered lead: one
// Redis round trip, no CRM call.
func BenchmarkProcessTaskDuplicate(b *testing.B) {
	ctx := b.Context()
	e := newEnv(b, crmclient.V2, nil)
	task, _ := newLeadTask(b)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := e.h.ProcessTask(ctx, task); err != nil {
			b.Fatal(err)
		}
	}
}
