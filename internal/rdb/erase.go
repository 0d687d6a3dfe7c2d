package rdb

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// EraseLead removes what LeadRelay's own store keeps of lead id besides
// its delivered marker, for an erasure: the attempt record, the timeline
// of runs, its keyless repeat count, the previous version's admission and owner records, and its
// poison bookkeeping. It answers how many keys and entries it removed.
// The caller deletes the lead's task first, so no run writes them again.
// The delivered marker stays: it holds no field of the lead (its site,
// CRM id, time and a 64-bit prefix of the content digest), and without it
// a repeat of the lead would be delivered again.
func (s *Store) EraseLead(ctx context.Context, id string) (int, error) {
	var cmds []*redis.IntCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmds = append(cmds, p.Del(ctx, AttemptKey(id), TimelineKey(id), LeadKey(id), RepeatsKey(id)), p.HDel(ctx, CRMLeadFailsKey, id))
		if !s.cluster {
			cmds = append(cmds, p.Del(ctx, LegacyOwnerKey(id)))
		}
		return nil
	})
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, err
}

// EraseKeyless removes the keyless identities (KeylessKey) whose site
// and identity named says name a lead being erased: the key holds the
// content digest. It scans every keyless identity (they live for the
// keyless window, so they are few) and answers how many it removed.
func (s *Store) EraseKeyless(ctx context.Context, named func(site, identity string) bool) (int, error) {
	prefix := Prefix + "keyless:"
	n := 0
	err := s.scan(ctx, prefix+"*", func(c redis.UniversalClient, key string) error {
		site, _, ok := strings.Cut(strings.TrimPrefix(key, prefix), ":")
		if !ok {
			return nil
		}
		identity, err := c.HGet(ctx, key, "id").Result()
		if err != nil || !named(site, identity) {
			return nilErr(err)
		}
		d, err := c.Del(ctx, key).Result()
		n += int(d)
		return err
	})
	return n, err
}

// scan calls f with every key matching pattern, on every primary of a
// Cluster, with the client of the node that holds it.
func (s *Store) scan(ctx context.Context, pattern string, f func(c redis.UniversalClient, key string) error) error {
	one := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := f(c, iter.Val()); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, s.c)
}
