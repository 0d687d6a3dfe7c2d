package worker_test

import (
	"fmt"
	"time"

	"leadrelay/crmclient"
	"leadrelay/delivery"
	"leadrelay/worker"
)

// IsFailure and RetryDelay go into asynq.Config: backpressure is no failure,
// and the CRM's Retry-After stretches the backoff.
func ExampleRetryDelay() {
	delay := worker.RetryDelay(worker.Options{RetryInitial: time.Second, RetryMaxDelay: time.Hour})
	busy := &crmclient.StatusError{Action: "add", StatusCode: 503, RetryAfter: 2 * time.Minute}
	open := &worker.DelayError{Delay: 30 * time.Second, Reason: delivery.Reason{Code: delivery.CircuitOpen}}
	fmt.Println(delay(0, busy, nil), worker.IsFailure(busy))
	fmt.Println(delay(0, open, nil), worker.IsFailure(open))
	// Output:
	// 2m0s true
	// 30s false
}
