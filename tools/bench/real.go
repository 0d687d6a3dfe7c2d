package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	v2 "leadrelay/crm/v2"
	"leadrelay/crmclient"
	"leadrelay/internal/rdb"
	"leadrelay/lead"
)

// RealCRM is a running SalesMan CRM the real section measures against.
type RealCRM struct {
	// URL, Login and APIKey reach it (LEADRELAY_CRM_URL, _LOGIN, _APIKEY).
	URL, Login, APIKey string
}

// realCooldown is the pause after each direct sweep and after LeadRelay's run.
const realCooldown = 10 * time.Second

// realLevels are the parallel direct adds tried against the real CRM.
var realLevels = []int{1, 2, 4, 8, 16}

// startCRMProxy puts the counter in front of a real CRM.
func startCRMProxy(target string) (*crm, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	c := &crm{url: "http://" + ln.Addr().String()}
	c.expect(0, false)
	c.stop = serve(ln, c.wrap(rp))
	return c, nil
}

// realSettle and realWindow are LeadRelay's warm-up and measured window
// against the real CRM: the adaptive limit climbs one slot per epoch (a
// second or more at the CRM's latency), may probe one collapse (its 5 s
// stall) on the way, and is measured once it settled, as a fleet that runs
// for hours runs.
const (
	realSettle = 30 * time.Second
	realWindow = 20 * time.Second
)

// realLeads are queued for LeadRelay's run: more than the CRM's best
// direct rate delivers in realSettle+realWindow.
const realLeads = 8000

// real measures the CRM's best direct rate (crmclient.Add from P
// goroutines, the request LeadRelay sends, P swept) and LeadRelay with its
// default settings, 2 worker processes × 10, against it. The direct sweep
// runs before and after LeadRelay's run, and each level's reference is the
// mean of the two, so a host that got busier or quieter meanwhile (the
// CRM's PHP is CPU-bound, on shared cores) skews neither side.
func (b *bench) real(ctx context.Context) error {
	rc := b.o.RealCRM
	warm, window := 2*time.Second, 8*time.Second
	settle, lrWindow, cooldown := realSettle, realWindow, realCooldown
	if b.o.Quick {
		warm, window = 300*time.Millisecond, time.Second
		settle, lrWindow, cooldown = time.Second, time.Second, time.Second
	}
	cl, err := crmclient.New(rc.URL, rc.Login, rc.APIKey, crmclient.WithAPIVersion(crmclient.V2),
		crmclient.WithTimeout(30*time.Second), crmclient.WithMaxIdleConns(32))
	if err != nil {
		return err
	}
	run := strconv.FormatInt(time.Now().Unix(), 36)
	// A sweep's widest level may collapse the CRM: its stalled requests
	// finish within the webhook timeout (5 s), then it is idle. LeadRelay's
	// run may probe a collapse too.
	pause := func() error {
		select {
		case <-time.After(cooldown):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	sweep := func(n int) error {
		for _, p := range realLevels {
			rate, failed := directRate(ctx, cl, fmt.Sprintf("%s-%d-%d", run, n, p), p, warm, window)
			b.logf("real    direct crmclient.Add, sweep %d, %2d parallel  %6.1f adds/s  (%d failed)", n, p, rate, failed)
			b.rep.Real = append(b.rep.Real, PoolPoint{Sweep: n, Conc: p, PerSec: rate})
		}
		return pause()
	}
	if err := sweep(1); err != nil {
		return err
	}
	c, err := startCRMProxy(rc.URL)
	if err != nil {
		return err
	}
	env := map[string]string{"LEADRELAY_CRM_MAX_CONCURRENT": "", "LEADRELAY_CRM_RATE_LIMIT": "", "LEADRELAY_CRM_ADAPTIVE": "",
		"LEADRELAY_CRM_LOGIN": rc.Login, "LEADRELAY_CRM_APIKEY": rc.APIKey}
	leads := realLeads
	if b.o.Quick {
		leads = 300
	}
	rate, err := b.windowRun(ctx, c, env, settle, lrWindow, leads)
	c.close()
	if err != nil {
		return err
	}
	limit, _ := rdb.New(b.rdb).CRMLimit(ctx)
	b.logf("real    LeadRelay defaults 2×10 (adaptive limit %.1f) %6.1f leads/s", limit, rate)
	b.rep.Real = append(b.rep.Real, PoolPoint{PerSec: rate, Limit: limit})
	if err := pause(); err != nil {
		return err
	}
	return sweep(2)
}

// directRate adds leads from p goroutines and counts the successes after
// warm, for window.
func directRate(ctx context.Context, cl *crmclient.Client, run string, p int, warm, window time.Duration) (float64, int) {
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+window)
	var mu sync.Mutex
	ok, failed := 0, 0
	var wg sync.WaitGroup
	for g := range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; time.Now().Before(until) && ctx.Err() == nil; i += p {
				pl := lead.NewPayload(benchSite, run+"-"+strconv.Itoa(i), benchLead("direct-"+run, i), time.Now())
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := cl.Add(cctx, v2.Lead(pl))
				cancel()
				now := time.Now()
				mu.Lock()
				if err != nil {
					failed++
				} else if now.After(from) && now.Before(until) {
					ok++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(ok) / window.Seconds(), failed
}

func (r *Report) realRows() []Row {
	// The reference at each level is the mean of the sweeps around
	// LeadRelay's run; the best level's mean is the target's reference.
	sum, runs := map[int]float64{}, map[int]int{}
	sweeps := map[int][]string{}
	var def *PoolPoint
	for i, p := range r.Real {
		if p.Conc == 0 {
			def = &r.Real[i]
			continue
		}
		sum[p.Conc] += p.PerSec
		runs[p.Conc]++
		sweeps[p.Sweep] = append(sweeps[p.Sweep], fmt.Sprintf("%d: %.0f", p.Conc, p.PerSec))
	}
	var best PoolPoint
	for _, k := range realLevels {
		if runs[k] > 0 && sum[k]/float64(runs[k]) > best.PerSec {
			best = PoolPoint{Conc: k, PerSec: sum[k] / float64(runs[k])}
		}
	}
	if best.Conc == 0 {
		return nil
	}
	var rows []Row
	for n := 1; n <= 2; n++ {
		if len(sweeps[n]) > 0 {
			when := "before"
			if n == 2 {
				when = "after"
			}
			rows = append(rows, Row{Figure: fmt.Sprintf("real SalesMan CRM, direct adds/s by parallel requests, %s LeadRelay's run", when),
				Value: strings.Join(sweeps[n], ", ")})
		}
	}
	if def != nil {
		rows = append(rows, ratioRow(fmt.Sprintf("real SalesMan CRM, LeadRelay defaults 2×10 (adaptive, settled at %.1f)", def.Limit),
			def.PerSec, fmt.Sprintf("best direct rate, mean of the sweeps (%d parallel)", best.Conc), best.PerSec, "%.1f", "≥ 0.9", true))
	}
	return rows
}
