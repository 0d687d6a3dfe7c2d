package rdb

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Durability is how one Redis primary keeps what LeadRelay writes, as its
// INFO says (INFO is the one administrative command the deployment's ACL
// users may run; CONFIG is refused to them and to managed Redis users).
type Durability struct {
	// Node is the primary's address.
	Node string
	// Policy is its maxmemory-policy: anything but "noeviction" lets
	// Redis delete queued tasks and delivered markers when it fills.
	Policy string
	// AOF says it writes an append-only file (appendonly yes); without
	// one a restart goes back to the last snapshot.
	AOF bool
	// RunID changes with every start of the server.
	RunID string
	// Used and MaxMemory are its used_memory and maxmemory (0: no limit).
	Used, MaxMemory int64
}

// Evicts reports whether the primary deletes keys when it is full.
func (d Durability) Evicts() bool { return d.Policy != "noeviction" }

// Durability reads INFO of every primary (one on a single primary or
// behind Sentinel, each of them on a Cluster).
func (s *Store) Durability(ctx context.Context) ([]Durability, error) {
	read := func(ctx context.Context, c redis.UniversalClient, node string) (Durability, error) {
		info, err := c.Info(ctx, "server", "memory", "persistence").Result()
		if err != nil {
			return Durability{}, fmt.Errorf("redis INFO of %s: %w", node, err)
		}
		d, err := parseDurability(info)
		d.Node = node
		return d, err
	}
	cc, ok := s.c.(*redis.ClusterClient)
	if !ok {
		d, err := read(ctx, s.c, nodeAddr(s.c))
		if err != nil {
			return nil, err
		}
		return []Durability{d}, nil
	}
	var (
		mu  sync.Mutex
		out []Durability
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		d, err := read(ctx, node, node.Options().Addr)
		if err != nil {
			return err
		}
		mu.Lock()
		out = append(out, d)
		mu.Unlock()
		return nil
	})
	return out, err
}

// nodeAddr names the server a client talks to, for messages.
func nodeAddr(c redis.UniversalClient) string {
	if rc, ok := c.(*redis.Client); ok {
		return rc.Options().Addr
	}
	return "redis"
}

// parseDurability reads the fields of Durability from INFO's text.
func parseDurability(info string) (Durability, error) {
	var d Durability
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "maxmemory_policy":
			d.Policy = v
		case "aof_enabled":
			d.AOF = v == "1"
		case "run_id":
			d.RunID = v
		case "used_memory":
			d.Used, err = strconv.ParseInt(v, 10, 64)
		case "maxmemory":
			d.MaxMemory, err = strconv.ParseInt(v, 10, 64)
		default:
			continue
		}
		if err != nil {
			return Durability{}, fmt.Errorf("redis INFO: %s: %w", k, err)
		}
		seen[k] = true
	}
	for _, k := range []string{"maxmemory_policy", "aof_enabled", "used_memory", "maxmemory"} {
		if !seen[k] {
			return Durability{}, fmt.Errorf("redis INFO: %s missing", k)
		}
	}
	return d, nil
}

// DeliveredGrowth is what a lead adds to Redis's memory between queued
// and delivered, in bytes: asynq keeps its completed task for
// LEADRELAY_DEDUP_TTL (the completion's fields and sorted-set entry, and
// the CRM id as its result), and the store adds the compact delivered
// marker, the CRM id's claim and the lead's timeline of runs. internal/app's
// TestMemoryGuardDrains measured 1,516 B a lead over 622 leads (it was
// 374 B of data and 461 B with Redis's key tables before the timeline and
// the result were kept); this leaves room above it. Intake's memory guard
// counts it for every lead waiting, so a backlog filled to the guard can
// still be delivered.
const DeliveredGrowth = 1792
