package rdb

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SiteDeliveries are a site's deliveries as Finish counts them.
type SiteDeliveries struct {
	// Today counts the site's leads delivered on the UTC day asked for.
	Today int64
	// Last is when a lead of the site was last delivered; zero when none
	// was since this version counts.
	Last time.Time
}

// Deliveries reads each site's deliveries on day's UTC date and its last
// delivery (DeliveredSitesKey, LastDeliveredKey), in one round trip. A
// site with neither is absent.
func (s *Store) Deliveries(ctx context.Context, day time.Time) (map[string]SiteDeliveries, error) {
	var today, last *redis.MapStringStringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		today = p.HGetAll(ctx, DeliveredSitesKey(day.UTC().Format("2006-01-02")))
		last = p.HGetAll(ctx, LastDeliveredKey)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string]SiteDeliveries{}
	for site, v := range today.Val() {
		d := out[site]
		d.Today, _ = strconv.ParseInt(v, 10, 64)
		out[site] = d
	}
	for site, v := range last.Val() {
		d := out[site]
		d.Last = fromMS(v)
		out[site] = d
	}
	return out, nil
}

// Backlogs reads each site's undelivered leads of queue as admission
// counts them (BacklogKey): queued and retrying together.
func (s *Store) Backlogs(ctx context.Context, queue string) (map[string]int64, error) {
	m, err := s.c.HGetAll(ctx, BacklogKey(queue)).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(m))
	for site, v := range m {
		out[site], _ = strconv.ParseInt(v, 10, 64)
	}
	return out, nil
}
