package producer

import (
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"leadrelay/internal/redistest"
	"leadrelay/lead"
)

// BenchmarkPublish measures accepting one new lead: validate, encode,
// enqueue on a real redis-server (AOF everysec), record the owner.
func BenchmarkPublish(b *testing.B) {
	rds := redistest.Start(b)
	p := New(rds.Client(), Options{}, zap.NewNop())
	ctx := b.Context()
	l := lead.Lead{Title: "Ann Lee", Email: "ann@example.com", Phone: "+79001234567", Description: "Call me back"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Publish(ctx, "shop", l, fmt.Sprintf("k%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishDuplicate measures a repeat submission, answered from
// the task id conflict.
func BenchmarkPublishDuplicate(b *testing.B) {
	rds := redistest.Start(b)
	p := New(rds.Client(), Options{}, zap.NewNop())
	ctx := b.Context()
	l := lead.Lead{Title: "Ann Lee", Email: "ann@example.com"}
	if _, err := p.Publish(ctx, "shop", l, "same"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, err := p.Publish(ctx, "shop", l, "same"); err != nil || !r.Duplicate {
			b.Fatal(r, err)
		}
	}
}

// BenchmarkPublishParallel measures intake throughput with 8 concurrent
// publishers on one Redis.
func BenchmarkPublishParallel(b *testing.B) {
	rds := redistest.Start(b)
	p := New(rds.Client(), Options{}, zap.NewNop())
	ctx := b.Context()
	l := lead.Lead{Title: "Ann Lee", Email: "ann@example.com"}
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("p%d", n.Add(1))
			if _, err := p.Publish(ctx, "shop", l, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
