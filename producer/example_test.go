package producer_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"leadrelay/lead"
	"leadrelay/producer"
	"leadrelay/status"
)

func Example() {
	mr, err := miniredis.Run() // an embedded Redis, enough for an example
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	p := producer.New(rdb, producer.Options{Queue: "leads"}, zap.NewNop())
	defer p.Close()
	ctx := context.Background()

	first, err := p.Publish(ctx, "shop", lead.Lead{Title: "Ann", Email: "ann@example.com"}, "order-42")
	if err != nil {
		fmt.Println("publish:", err)
		return
	}
	again, _ := p.Publish(ctx, "shop", lead.Lead{Title: "Ann", Email: "ann@example.com"}, "order-42")
	fmt.Println("same lead:", first.ID == again.ID, "duplicate:", again.Duplicate)

	st, _ := p.Status(ctx, "shop", first.ID)
	fmt.Println("state:", st.State)

	_, err = p.Status(ctx, "blog", first.ID)
	fmt.Println("another site sees it:", !errors.Is(err, status.ErrNotFound))

	_, err = p.Publish(ctx, "shop", lead.Lead{Email: "not an address"}, "")
	fmt.Println(err)
	// Output:
	// same lead: true duplicate: true
	// state: queued
	// another site sees it: false
	// invalid lead: email: not an e-mail address
}
