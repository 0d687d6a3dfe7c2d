package app

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"leadrelay/config"
)

// TestDataCodec: a process that writes leads seals them under the
// configured keys, refuses to start without keys (naming the variable)
// unless opted out, and the embedded demo makes a key of its own.
func TestDataCodec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		embedded bool
		sealing  bool
		err      error
	}{
		{"keys", map[string]string{"LEADRELAY_DATA_KEYS": testDataKeys}, false, true, nil},
		{"no keys: refused", nil, false, false, ErrNoDataKeys},
		{"opted out", map[string]string{"LEADRELAY_DATA_UNENCRYPTED": "true"}, false, false, nil},
		{"the embedded demo", nil, true, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := loadConfig(t, tt.env)
			c, err := DataCodec(cfg, tt.embedded, zap.NewNop())
			if !errors.Is(err, tt.err) || c.Sealing() != tt.sealing {
				t.Fatalf("DataCodec: sealing %v, %v; want %v, %v", c.Sealing(), err, tt.sealing, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), "LEADRELAY_DATA_KEYS") {
				t.Errorf("the refusal does not name the variable: %v", err)
			}
		})
	}
}

// TestIDKey: intake names keyless leads under LEADRELAY_ID_KEY when set,
// else under a key derived from the oldest data key, which stays while a
// newer key is put first (a rotation) and every intake derives alike; a
// bad LEADRELAY_ID_KEY is a configuration problem that never quotes it.
func TestIDKey(t *testing.T) {
	t.Parallel()
	const k2 = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
	name := func(t *testing.T, env map[string]string) string {
		t.Helper()
		cfg := loadConfig(t, env)
		codec, err := DataCodec(cfg, false, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		k, err := IDKey(cfg, codec, false, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return k.Keyless("shop", "digest")
	}
	set := map[string]string{"LEADRELAY_DATA_KEYS": testDataKeys, "LEADRELAY_ID_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	derived := name(t, map[string]string{"LEADRELAY_DATA_KEYS": testDataKeys})
	if got := name(t, map[string]string{"LEADRELAY_DATA_KEYS": testDataKeys}); got != derived {
		t.Errorf("two intakes derive different id keys")
	}
	if got := name(t, map[string]string{"LEADRELAY_DATA_KEYS": k2 + "," + testDataKeys}); got != derived {
		t.Errorf("putting a new data key first changed the derived id key")
	}
	if got := name(t, set); got == derived {
		t.Errorf("LEADRELAY_ID_KEY is not used")
	}
	const bad = "c2hvcnQ="
	_, err := config.Load(func(k string) string { return map[string]string{"LEADRELAY_ID_KEY": bad}[k] })
	if err == nil || !strings.Contains(err.Error(), "LEADRELAY_ID_KEY") || strings.Contains(err.Error(), bad) {
		t.Errorf("a short LEADRELAY_ID_KEY: %v; want a problem naming the variable, not the key", err)
	}
}
