package erasure

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hibiken/asynq"

	"leadrelay/deadletter"
	"leadrelay/lead"
	"leadrelay/status"
)

// maxFind bounds the tasks and dead letters one search reads.
const maxFind = 200_000

// find returns the ids of the leads holding email or phone (either: the
// person's leads), exactly (status.Query.SamePerson: a number that only
// ends alike is another person's), among every task asynq
// holds and every dead letter, sealed ones opened with the Codec. A
// payload sealed under a key the Codec lacks is an error: a search that
// skipped it would report the person erased while a lead of theirs stays.
func (e *Eraser) find(ctx context.Context, email, phone string) ([]string, bool, error) {
	byEmail, byPhone := status.Query{Email: email}, status.Query{Phone: phone}
	if phone != "" && byPhone.Check() != nil {
		return nil, false, fmt.Errorf("%w: the phone holds fewer than 3 digits", ErrQuery)
	}
	match := func(l lead.Lead) bool {
		return email != "" && byEmail.SamePerson(l) || phone != "" && byPhone.SamePerson(l)
	}
	var ids []string
	var unreadable error
	truncated, err := e.reader.Scan(ctx, maxFind, func(_ string, info *asynq.TaskInfo, p lead.Payload) bool {
		if env, err := lead.ReadEnvelope(info.Payload); err == nil && env.Key != "" && !slices.Contains(e.o.Codec.Keys(), env.Key) {
			unreadable = fmt.Errorf("erasure: lead %s is sealed under key %q, which is not among LEADRELAY_DATA_KEYS", info.ID, env.Key)
			return false
		}
		if match(p.Lead) {
			ids = append(ids, p.ID)
		}
		return true
	})
	if err == nil {
		err = unreadable
	}
	if err != nil {
		return nil, false, err
	}
	recs, total, err := e.dead.List(ctx, deadletter.Filter{Limit: maxFind})
	if err != nil {
		return nil, false, fmt.Errorf("erasure: search dead letters: %w", err)
	}
	for _, r := range recs {
		p, err := e.o.Codec.Decode(r.Payload)
		switch {
		case errors.Is(err, lead.ErrNoFields):
		case err != nil:
			return nil, false, fmt.Errorf("erasure: search dead letter %s: %w", r.LeadID, err)
		case match(p.Lead):
			ids = append(ids, p.ID)
		}
	}
	return ids, truncated || total > len(recs), nil
}
