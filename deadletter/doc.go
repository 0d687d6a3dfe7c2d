// Package deadletter is LeadRelay's own store of dead leads in Redis. The
// worker is its one writer; a record keeps why the lead died as a
// delivery.Reason (data: a code and its parameters), which lists, the ops
// UI and notifications render in their audience's words.
//
// asynq keeps at most 10,000 archived tasks per queue for at most 90 days
// and silently deletes the oldest beyond that. A dead lead is still a lead,
// so the worker also puts every dead lead here, where nothing trims it: the
// CLI and the ops UI list, show, requeue and purge them from this store.
//
//	store := deadletter.New(rdb, deadletter.Options{MaxRetry: cfg.MaxRetry, Retention: cfg.DedupTTL})
//	err := store.Put(ctx, deadletter.Record{LeadID: id, Site: site, Queue: queue,
//		Reason: delivery.Reason{Code: delivery.CRMRejected, CRMCode: 1}, Payload: task.Payload()})
//	res, err := store.Requeue(ctx, []string{id}, nil)
//
// Keys (prefix leadrelay:{dead}:, built and written by internal/rdb):
// lead:<id> is a hash holding the record, index, site:<site> and
// queue:<queue> are sorted sets of lead ids scored by the time the lead
// died. Each change to them is one script, so the indexes never disagree
// with the records. The keys share the hash
// tag {dead}, so the store works on a Redis Cluster too (in one slot: dead
// leads are few). Migrate moves the previous version's untagged keys.
package deadletter
