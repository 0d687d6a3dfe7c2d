package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"

	"leadrelay/crmclient"
	"leadrelay/lead"
)

// RealCRM is a running SalesMan CRM the real section measures against.
type RealCRM struct {
	// URL, Login and APIKey reach it (LEADRELAY_CRM_URL, _LOGIN, _APIKEY).
	URL, Login, APIKey string
}

// realCooldown is the pause between the direct sweep and LeadRelay's run.
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
	c.srv = &http.Server{Handler: c.wrap(rp), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// real measures the CRM's best direct rate (crmclient.Add from P
// goroutines, the request LeadRelay sends, P swept) and LeadRelay with its
// default settings, 2 worker processes × 10, against it.
func (b *bench) real(ctx context.Context) error {
	rc := b.o.RealCRM
	warm, window := 2*time.Second, 8*time.Second
	if b.o.Quick {
		warm, window = 300*time.Millisecond, time.Second
	}
	cl, err := crmclient.New(rc.URL, rc.Login, rc.APIKey, crmclient.WithAPIVersion(crmclient.V2),
		crmclient.WithTimeout(30*time.Second), crmclient.WithMaxIdleConns(32))
	if err != nil {
		return err
	}
	run := strconv.FormatInt(time.Now().Unix(), 36)
	for _, p := range realLevels {
		rate, failed := directRate(ctx, cl, run+"-"+strconv.Itoa(p), p, warm, window)
		b.logf("real    direct crmclient.Add, %2d parallel  %6.1f adds/s  (%d failed)", p, rate, failed)
		b.rep.Real = append(b.rep.Real, PoolPoint{Conc: p, PerSec: rate})
	}
	// The widest direct run may have collapsed the CRM: its stalled
	// requests finish within the webhook timeout (5 s), then it is idle.
	select {
	case <-time.After(realCooldown):
	case <-ctx.Done():
		return ctx.Err()
	}
	c, err := startCRMProxy(rc.URL)
	if err != nil {
		return err
	}
	defer c.close()
	env := map[string]string{"LEADRELAY_CRM_MAX_CONCURRENT": "", "LEADRELAY_CRM_RATE_LIMIT": "", "LEADRELAY_CRM_ADAPTIVE": "",
		"LEADRELAY_CRM_LOGIN": rc.Login, "LEADRELAY_CRM_APIKEY": rc.APIKey}
	if b.o.Quick {
		warm = time.Second
	} else {
		warm = 15 * time.Second
	}
	rate, err := b.windowRun(ctx, c, env, warm, window, 3000)
	if err != nil {
		return err
	}
	limit, _ := b.rdb.HGet(ctx, limitKey, "limit").Float64()
	b.logf("real    LeadRelay defaults 2×10 (adaptive limit %.1f) %6.1f leads/s", limit, rate)
	b.rep.Real = append(b.rep.Real, PoolPoint{PerSec: rate, Limit: limit})
	return nil
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
				_, err := cl.Add(cctx, crmLeadOf(pl))
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
	var best PoolPoint
	var def *PoolPoint
	var sweep string
	for i, p := range r.Real {
		if p.Conc == 0 {
			def = &r.Real[i]
			continue
		}
		if sweep != "" {
			sweep += ", "
		}
		sweep += fmt.Sprintf("%d: %.0f", p.Conc, p.PerSec)
		if p.PerSec > best.PerSec {
			best = p
		}
	}
	if best.Conc == 0 {
		return nil
	}
	rows := []Row{{Figure: "real SalesMan CRM, direct adds/s by parallel requests", Value: sweep}}
	if def != nil {
		rows = append(rows, ratioRow(fmt.Sprintf("real SalesMan CRM, LeadRelay defaults 2×10 (adaptive, settled at %.1f)", def.Limit),
			def.PerSec, fmt.Sprintf("best direct rate (%d parallel)", best.Conc), best.PerSec, "%.1f", "≥ 0.9", true))
	}
	return rows
}
