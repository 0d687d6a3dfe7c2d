package deadletter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"leadrelay/deadletter"
	"leadrelay/delivery"
	"leadrelay/lead"
)

func Example() {
	m, err := miniredis.Run() // any Redis; production uses the relay's
	if err != nil {
		panic(err)
	}
	defer m.Close()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	store := deadletter.New(rdb, deadletter.Options{MaxRetry: 80, Retention: 24 * time.Hour})

	p := lead.NewPayload("shop", "order-42", lead.Lead{Title: "Ann"}, time.Now())
	task, _ := lead.NewTask(p)
	// The worker, when a lead dies:
	_ = store.Put(ctx, deadletter.Record{
		LeadID: p.ID, Site: p.Site, Queue: lead.DefaultQueue, Attempts: 1,
		Reason:     delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1, Detail: "Ошибка добавления лида"},
		ReceivedAt: p.ReceivedAt, Payload: task.Payload(),
	})

	recs, total, _ := store.List(ctx, deadletter.Filter{Site: "shop", Limit: 10})
	fmt.Println(total, recs[0].Reason.Code, recs[0].Reason.Text(delivery.Operators))
	// Output: 1 crm_rejected the CRM rejected the lead (CRM code 1): Ошибка добавления лида
}
