package crmsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
)

// snapshot is the DataFile format.
type snapshot struct {
	Version     int      `json:"version"`
	NextID      int64    `json:"next_id"`
	ClientPaths []string `json:"clientpaths"`
	// ClientPathUTMs are the sources' utm_source, by index of ClientPaths
	// (missing in older files: none).
	ClientPathUTMs []string     `json:"clientpath_utms,omitempty"`
	Leads          []StoredLead `json:"leads"`
}

const snapshotVersion = 1

// loadSnapshot reads path; a missing file is not an error (nil snapshot).
func loadSnapshot(path string) (*snapshot, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, err
	}
	if snap.Version != snapshotVersion {
		return nil, fmt.Errorf("unsupported version %d", snap.Version)
	}
	return &snap, nil
}

func (st *store) restore(snap *snapshot) error {
	st.init()
	for i, l := range snap.Leads {
		if l.ID != int64(i)+1 {
			return fmt.Errorf("lead %d has id %d: ids must run 1, 2, 3, ...", i+1, l.ID)
		}
		st.push(l)
	}
	for i, p := range snap.ClientPaths {
		utm := ""
		if i < len(snap.ClientPathUTMs) {
			utm = snap.ClientPathUTMs[i]
		}
		st.addSource(p, utm)
	}
	return nil
}

// persister writes the DataFile, debounced.
type persister struct {
	path  string
	delay time.Duration // < 0: synchronous
	log   *zap.Logger

	saveMu sync.Mutex // serialises writes so an older snapshot never wins

	mu      sync.Mutex
	dirty   bool
	timer   *time.Timer
	stopped bool
}

// mark records a change; called with Sim.mu held, so a synchronous write
// happens in a goroutine-free way by snapshotting here.
func (p *persister) mark(s *Sim) {
	if p.delay < 0 {
		b, err := s.marshalLocked()
		if err == nil {
			err = writeAtomic(p.path, b)
		}
		if err != nil {
			p.log.Error("crmsim: persist", zap.String("file", p.path), zap.Error(err))
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dirty = true
	if p.timer == nil && !p.stopped {
		p.timer = time.AfterFunc(p.delay, func() {
			if err := p.flush(s); err != nil {
				p.log.Error("crmsim: persist", zap.String("file", p.path), zap.Error(err))
			}
		})
	}
}

func (p *persister) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// flush writes the file if a change is pending.
func (p *persister) flush(s *Sim) error {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	dirty := p.dirty
	p.dirty = false
	p.timer = nil
	p.mu.Unlock()
	if !dirty {
		return nil
	}
	s.mu.Lock()
	b, err := s.marshalLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeAtomic(p.path, b); err != nil {
		p.mu.Lock()
		p.dirty = true
		p.mu.Unlock()
		return err
	}
	return nil
}

func (s *Sim) marshalLocked() ([]byte, error) {
	names, utms := make([]string, len(s.st.paths)), make([]string, len(s.st.paths))
	for i, src := range s.st.paths {
		names[i], utms[i] = src.name, src.utm
	}
	return json.Marshal(snapshot{
		Version:        snapshotVersion,
		NextID:         int64(len(s.st.leads)) + 1,
		ClientPaths:    names,
		ClientPathUTMs: utms,
		Leads:          s.st.leads,
	})
}

// writeAtomic replaces path with b via a temp file in the same directory
// and a rename, so a crash leaves the old or the new file, never half.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
