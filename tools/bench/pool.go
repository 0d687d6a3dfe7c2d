package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"

	"leadrelay/crmsim"
	"leadrelay/internal/rdb"
)

// poolSizes are the simulated CRM's PHP pools.
var poolSizes = []int{4, 8, 32}

// poolLevels are the fixed LEADRELAY_CRM_MAX_CONCURRENT values swept by hand.
var poolLevels = []int{1, 2, 3, 4, 8, 16, 32}

// poolShape is the fleet in the pool section: two worker processes with
// the default concurrency, so the limit is shared through Redis.
var poolShape = shape{2, 10}

// poolFaults is the simulator as the real CRM behaves on this machine
// (crmsim's doc: PHP workers, 2 CPUs shared by the requests at work,
// 20 ms of work per add, webhook calls that stall while the pool is full).
func poolFaults(workers int) crmsim.Faults {
	return crmsim.Faults{PHPWorkers: workers, CPUs: 2, Latency: crmsim.Duration(20 * time.Millisecond)}
}

// pool measures, for each PHP pool, throughput at each fixed concurrency
// cap and with LeadRelay's default settings.
func (b *bench) pool(ctx context.Context) error {
	levels, pools := poolLevels, poolSizes
	if b.o.Quick {
		levels = []int{2, 8}
	}
	for _, workers := range pools {
		c, err := startCRM(poolFaults(workers))
		if err != nil {
			return err
		}
		for _, k := range levels {
			rate, err := b.poolRun(ctx, c, map[string]string{
				"LEADRELAY_CRM_MAX_CONCURRENT": strconv.Itoa(k), "LEADRELAY_CRM_ADAPTIVE": "false"}, false)
			if err != nil {
				c.close()
				return err
			}
			b.logf("pool    PHP pool %-2d fixed cap %-2d            %6.1f leads/s", workers, k, rate)
			b.rep.Pool = append(b.rep.Pool, PoolPoint{Pool: workers, Conc: k, PerSec: rate})
		}
		// The defaults: no limiter setting given at all.
		rate, err := b.poolRun(ctx, c, map[string]string{
			"LEADRELAY_CRM_MAX_CONCURRENT": "", "LEADRELAY_CRM_RATE_LIMIT": "", "LEADRELAY_CRM_ADAPTIVE": ""}, true)
		c.close()
		if err != nil {
			return err
		}
		limit, _ := rdb.New(b.rdb).CRMLimit(ctx)
		b.logf("pool    PHP pool %-2d defaults (adaptive limit %.1f) %6.1f leads/s", workers, limit, rate)
		b.rep.Pool = append(b.rep.Pool, PoolPoint{Pool: workers, PerSec: rate, Limit: limit})
	}
	return nil
}

// poolRun queues plenty of leads, runs the fleet with the extra settings,
// and counts what reached the CRM in a window after a warm-up: the steady
// rate, which for the defaults follows the adaptive limit's ramp.
func (b *bench) poolRun(ctx context.Context, c *crm, extra map[string]string, adaptive bool) (float64, error) {
	// A fixed cap is steady once the servers run; the defaults get long
	// enough to find the knee, including one collapse and its 5 s stall:
	// the adaptive limit climbs one slot per epoch (a second or more), so
	// from the starting 2 to a pool of 8 and back takes about 15 s.
	warm, window, leads := time.Second, 6*time.Second, 2500
	if adaptive {
		warm, leads = 30*time.Second, 6000
	}
	if b.o.Quick {
		warm, window, leads = 300*time.Millisecond, 700*time.Millisecond, 200
	}
	return b.windowRun(ctx, c, extra, warm, window, leads)
}

// windowRun queues leads, runs LeadRelay's fleet (poolShape) with the extra
// settings, and returns the CRM requests per second in window after warm.
func (b *bench) windowRun(ctx context.Context, c *crm, extra map[string]string, warm, window time.Duration, leads int) (float64, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	if err := b.preload(ctx, true, fmt.Sprintf("p%d", time.Now().UnixNano()), leads); err != nil {
		return 0, err
	}
	c.expect(0, false)
	stop, err := b.startWorkers(ctx, c, deliveryRelay, poolShape, nil, extra)
	if err != nil {
		return 0, err
	}
	defer stop()
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleep(warm); err != nil {
		return 0, err
	}
	n0, t0 := c.count(), time.Now()
	if err := sleep(window); err != nil {
		return 0, err
	}
	n1 := c.count()
	if n1 >= leads {
		return 0, fmt.Errorf("all %d leads delivered before the window closed: queue more", leads)
	}
	return float64(n1-n0) / time.Since(t0).Seconds(), nil
}

// bestFixed is the best fixed cap's throughput for a pool.
func (r *Report) bestFixed(workers int) (PoolPoint, bool) {
	var best PoolPoint
	ok := false
	for _, p := range r.Pool {
		if p.Pool == workers && p.Conc > 0 && p.PerSec > best.PerSec {
			best, ok = p, true
		}
	}
	return best, ok
}

func (r *Report) poolRows() []Row {
	var rows []Row
	for _, workers := range poolSizes {
		best, ok := r.bestFixed(workers)
		if !ok {
			continue
		}
		var sweep []string
		var def *PoolPoint
		for i, p := range r.Pool {
			switch {
			case p.Pool != workers:
			case p.Conc == 0:
				def = &r.Pool[i]
			default:
				sweep = append(sweep, fmt.Sprintf("%d: %.0f", p.Conc, p.PerSec))
			}
		}
		if def != nil {
			row := ratioRow(fmt.Sprintf("delivered leads/s, PHP pool %d, 2×10, defaults (adaptive, settled at %.1f)", workers, def.Limit),
				def.PerSec, fmt.Sprintf("best fixed LEADRELAY_CRM_MAX_CONCURRENT (%d)", best.Conc), best.PerSec, "%.0f", "≥ 0.9", true)
			rows = append(rows, row)
		}
		rows = append(rows, Row{Figure: fmt.Sprintf("delivered leads/s, PHP pool %d, fixed cap: leads/s", workers), Value: strings.Join(sweep, ", ")})
	}
	return rows
}

func (r *Report) poolPlot() (*plot.Plot, error) {
	if len(r.Pool) == 0 {
		return nil, nil
	}
	p := leadsPlot("PHP-pool CRM: fixed cap vs defaults (dashed)", "fixed LEADRELAY_CRM_MAX_CONCURRENT (log2)")
	var ticks []plot.Tick
	for _, k := range poolLevels {
		ticks = append(ticks, plot.Tick{Value: math.Log2(float64(k)), Label: strconv.Itoa(k)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	pools := map[int]bool{}
	for _, pt := range r.Pool {
		pools[pt.Pool] = true
	}
	var sizes []int
	for w := range pools {
		sizes = append(sizes, w)
	}
	sort.Ints(sizes)
	for i, w := range sizes {
		var pts plotter.XYs
		var def float64
		for _, pt := range r.Pool {
			switch {
			case pt.Pool != w:
			case pt.Conc == 0:
				def = pt.PerSec
			default:
				pts = append(pts, plotter.XY{X: math.Log2(float64(pt.Conc)), Y: pt.PerSec})
			}
		}
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(fmt.Sprintf("pool %d", w), line, points)
		if def > 0 && len(pts) > 0 {
			d, err := plotter.NewLine(plotter.XYs{{X: 0, Y: def}, {X: math.Log2(float64(poolLevels[len(poolLevels)-1])), Y: def}})
			if err != nil {
				return nil, err
			}
			d.Color = plotutil.Color(i)
			d.Dashes = plotutil.Dashes(1)
			p.Add(d)
		}
	}
	p.Legend.Top = true
	return p, nil
}
