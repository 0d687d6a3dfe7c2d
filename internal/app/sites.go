package app

import (
	"context"
	"crypto/sha256"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"leadrelay/config"
	"leadrelay/intake"
	"leadrelay/metrics"
)

// sitesReloader keeps intake's sites in step with the sites file
// (LEADRELAY_SITES_FILE): it reads the file again on SIGHUP and when its
// contents change, and replaces the running sites only with a file that
// passes every check, all at once; a refused file is logged with every
// problem and the running sites stay.
//
// Changes are found by polling the file's contents (a SHA-256 of them,
// every LEADRELAY_SITES_FILE_POLL), not with inotify: fsnotify is not in
// the module graph, a few kilobytes read every two seconds cost nothing,
// and a poll sees every way a file changes alike (rewritten in place,
// renamed over, a Kubernetes ConfigMap's symlink swapped, a bind mount
// replaced), where a watch on the file misses renames and needs the
// directory watched instead.
type sitesReloader struct {
	cfg     config.Config
	dir     *intake.Directory
	met     *metrics.Metrics
	log     *zap.Logger
	running config.Sites

	// seen is the contents last tried (applied or refused), pending the
	// contents read once since: a poll takes new contents only when two
	// reads in a row agree, so a file caught half-written is never
	// applied. A SIGHUP takes them at once.
	seen, pending [sha256.Size]byte
	// failing is set while the file cannot be read, so that is logged once.
	failing bool
}

// start runs the reloader until ctx is done, on SIGHUP instead of Go's
// default, which ends the process.
func (s *sitesReloader) start(ctx context.Context, wg *sync.WaitGroup) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer signal.Stop(hup)
		s.run(ctx, hup)
	}()
}

// run reloads on every SIGHUP and, with a poll interval, on every change,
// until ctx is done. Sites from LEADRELAY_SITES have nothing to reload: a
// SIGHUP says so instead of ending the process.
func (s *sitesReloader) run(ctx context.Context, hup <-chan os.Signal) {
	path := s.cfg.Intake.SitesFile
	var tick <-chan time.Time
	if path != "" && s.cfg.Intake.SitesPoll > 0 {
		t := time.NewTicker(s.cfg.Intake.SitesPoll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if path == "" {
				s.log.Warn("SIGHUP: the sites come from LEADRELAY_SITES, read once at start; nothing to reload (LEADRELAY_SITES_FILE can be reloaded)")
				continue
			}
			s.reload("SIGHUP", true)
		case <-tick:
			s.reload("change", false)
		}
	}
}

// reload reads the sites file and applies it when it changed (always when
// forced), keeping the running sites when it is refused.
func (s *sitesReloader) reload(trigger string, force bool) {
	path := s.cfg.Intake.SitesFile
	b, err := os.ReadFile(path)
	if err != nil {
		if force || !s.failing {
			s.log.Error("sites file cannot be read; the running sites stay", zap.String("file", path), zap.String("trigger", trigger), zap.Error(err))
		}
		s.failing = true
		return
	}
	s.failing = false
	sum := sha256.Sum256(b)
	if !force {
		if sum == s.seen {
			return
		}
		if sum != s.pending {
			s.pending = sum // read again at the next poll before it counts
			return
		}
	}
	s.seen = sum
	sites, err := s.cfg.ParseSitesFile(path, b)
	if err != nil {
		s.log.Error("sites file refused; the running sites stay", zap.String("file", path), zap.String("trigger", trigger),
			zap.Strings("problems", problemTexts(err)))
		return
	}
	added, removed, changed := diffSites(s.running, sites)
	if !force && len(added)+len(removed)+len(changed) == 0 {
		return // rewritten as it was
	}
	s.dir.Replace(intakeSites(sites))
	s.met.KnownSites(sites.Names()...)
	s.running = sites
	s.log.Info("sites reloaded", zap.String("file", path), zap.String("trigger", trigger), zap.Int("sites", len(sites)),
		zap.Strings("added", added), zap.Strings("removed", removed), zap.Strings("changed", changed))
}

// diffSites names the sites added, removed and changed (keys or
// settings) from old to cur: names only, never a key.
func diffSites(old, cur config.Sites) (added, removed, changed []string) {
	for _, name := range cur.Names() {
		prev, ok := old[name]
		switch {
		case !ok:
			added = append(added, name)
		case !reflect.DeepEqual(prev, cur[name]):
			changed = append(changed, name)
		}
	}
	for _, name := range old.Names() {
		if _, ok := cur[name]; !ok {
			removed = append(removed, name)
		}
	}
	return added, removed, changed
}

// problemTexts lists the problems of config's joined error, one each.
func problemTexts(err error) []string {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range j.Unwrap() {
		out = append(out, e.Error())
	}
	return out
}
